from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.dispatch.dispatches.schemas import DispatchRead
from services.dispatch.visits.schemas import VisitRead
from shared.dates import IsoDate


class Tasks(BaseModel):
    """A caregiver's handset feed: today's route in order, and any dispatch offered or taken."""

    staff_id: uuid.UUID
    day: date
    visits: list[VisitRead]
    offers: list[DispatchRead]
    active: list[DispatchRead] = Field(description="dispatches accepted and not yet resolved")


class PlanDayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: IsoDate
    org_id: uuid.UUID
    station_id: uuid.UUID | None = Field(None, description="solve one station only")
    solver: Literal["vroom", "greedy"] = "vroom"
    apply: bool = Field(True, description="write the assignment onto the visits")
    unavailable_staff: list[uuid.UUID] = Field(
        default_factory=list, max_length=200, description="a sick call: re-plan without them"
    )


class RouteStop(BaseModel):
    visit_id: uuid.UUID
    eta_minutes: float  # minutes after midnight, Asia/Shanghai
    travel_minutes: float


class Route(BaseModel):
    staff_id: uuid.UUID
    stops: list[RouteStop]
    travel_minutes: float


class Unassigned(BaseModel):
    visit_id: uuid.UUID
    reason: str


class SolveSummary(BaseModel):
    solver: str
    assigned: int
    unassigned: list[Unassigned]
    travel_minutes: float
    seconds: float


class DayPlan(BaseModel):
    day: date
    visits: int
    kept: int = Field(description="visits already started, left where they are")
    result: SolveSummary
    baseline: SolveSummary
    routes: list[Route]
    applied: bool


class Violation(BaseModel):
    code: str = Field(
        description="delay, lead_time, skills, max_tasks, missing_break, shift_end (stable ids)"
    )
    message: str


class CheckedStop(BaseModel):
    visit_id: uuid.UUID
    eta_minutes: float  # minutes after midnight, Asia/Shanghai
    travel_minutes: float
    violations: list[Violation]


class CheckedRoute(BaseModel):
    staff_id: uuid.UUID
    stops: list[CheckedStop]
    violations: list[Violation] = Field(description="of the route as a whole (shift, break)")
    travel_minutes: float


class DayCheck(BaseModel):
    """A day's assignment as it stands, re-checked (VROOM plan mode); nothing is moved."""

    day: date
    visits: int
    kept: int = Field(description="visits already started (not re-checked)")
    routes: list[CheckedRoute]
    unassigned: list[Unassigned] = Field(
        description="planned visits on no route: no_caregiver, caregiver_unavailable, "
        "no_home_location"
    )
    violations: int = Field(description="stops and routes with at least one violation")
    travel_minutes: float
    seconds: float
