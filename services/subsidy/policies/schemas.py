from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.subsidy.evaluations.schemas import Kind
from shared.errors import FieldError
from shared.i18n import T


class RuleSummary(BaseModel):
    id: str
    name: str
    kind: Kind
    need: str
    pay_to: Literal["org", "voucher"]
    fund: str
    reference: str


class PolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    version: int
    title: str
    status: Literal["active", "draft"] = Field(
        description="`active` (selected for evaluations and runs) or `draft`"
    )
    regions: list[str]
    valid_from: date
    valid_to: date | None
    hash: str = Field(description="sha256 of the document; decision records name it")
    source: Literal["bundled", "api"] = Field(description="`bundled` (shared/policies) or `api`")
    created_at: datetime
    rules: list[RuleSummary] = []
    blanks: list[FieldError] = Field(
        default=[], description="what an admin must fill in before a draft can be activated"
    )


class PolicyDocumentRead(PolicyRead):
    document: dict[str, Any]


class PolicyCreate(BaseModel):
    """A policy document (the YAML schema of shared/policies, as JSON)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    version: int = Field(ge=1, le=1_000_000)
    title: str = Field(min_length=1, max_length=256)

    @model_validator(mode="after")
    def _no_nul(self) -> PolicyCreate:
        def walk(value: Any, path: str) -> None:
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(
                    T(f"{path}：不允许 NUL 字符", f"{path}: NUL characters are not allowed")
                )
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(k, path)
                    walk(v, f"{path}.{k}")
            if isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, f"{path}[{i}]")

        walk(self.model_dump(), "document")
        return self
