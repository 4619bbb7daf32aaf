"""The escalation chain as a pure state machine (tests drive it without a database).

A chain is data: ordered steps (``offer`` to the next candidate and wait N seconds,
``notify_family``, ``notify_community``, ``advise_120``, each with its own wait), repeated at
most ``max_rounds`` times. A step is performed, then its wait runs; when the wait ends (or at
once when it is 0, or when an offered caregiver declines) the next step is performed. An
``offer`` with no candidate left is skipped. A new round offers again from the first candidate
who has not declined. When the rounds are used up the dispatch stays ``escalated`` with no
timer: the call tree has been worked through and the duty desk has it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from shared.i18n import T

ACTIONS = ("offer", "notify_family", "notify_community", "advise_120")
MAX_STEPS = 20
MAX_ROUNDS = 5
MAX_WAIT_S = 3600


@dataclass(frozen=True)
class State:
    status: str = "offered"
    step_index: int = 0
    round: int = 0
    next_candidate: int = 0
    offered: int | None = None  # candidate index holding the current offer
    declined: frozenset[int] = frozenset()
    due_in_s: float | None = None  # the timer to set (None: no timer)


@dataclass(frozen=True)
class Effect:
    action: (
        str  # offered, timed_out, declined, notify_family, notify_community, advise_120, exhausted
    )
    candidate: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def validate(chain: dict[str, Any]) -> list[tuple[str, T]]:
    """What is wrong with a chain document, as (field, text for people) pairs (empty when it
    is usable)."""
    errors: list[tuple[str, T]] = []
    steps = chain.get("steps")
    if not isinstance(steps, list) or not steps:
        return [("steps", T("至少需要一个步骤", "at least one step"))]
    if len(steps) > MAX_STEPS:
        errors.append(("steps", T(f"最多 {MAX_STEPS} 个步骤", f"at most {MAX_STEPS} steps")))
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or step.get("action") not in ACTIONS:
            names = ", ".join(ACTIONS)
            errors.append((f"steps.{i}.action", T(f"应为 {names} 之一", f"one of {names}")))
            continue
        wait = step.get("wait_s", 0)
        if not isinstance(wait, int) or not 0 <= wait <= MAX_WAIT_S:
            errors.append(
                (
                    f"steps.{i}.wait_s",
                    T(f"0 到 {MAX_WAIT_S} 的整数秒", f"whole seconds 0..{MAX_WAIT_S}"),
                )
            )
    rounds = chain.get("max_rounds", 1)
    if not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        errors.append(("max_rounds", T(f"1 到 {MAX_ROUNDS}", f"1..{MAX_ROUNDS}")))
    if not any(isinstance(s, dict) and s.get("action") == "offer" for s in steps):
        errors.append(("steps", T("至少需要一个派单（offer）步骤", "at least one offer step")))
    return errors


def _perform_from(
    chain: dict[str, Any], state: State, candidates: int
) -> tuple[State, list[Effect]]:
    steps = chain["steps"]
    rounds = int(chain.get("max_rounds", 1))
    effects: list[Effect] = []
    idle_steps = 0  # steps in a row that did nothing: a round of them ends the chain
    i, rnd, nxt = state.step_index, state.round, state.next_candidate
    status = state.status
    while True:
        if i >= len(steps):
            rnd, i = rnd + 1, 0
            if rnd >= rounds or idle_steps >= len(steps):
                effects.append(Effect("exhausted"))
                return (
                    replace(
                        state,
                        status="escalated",
                        step_index=len(steps),
                        round=min(rnd, rounds),
                        next_candidate=nxt,
                        offered=None,
                        due_in_s=None,
                    ),
                    effects,
                )
            nxt = 0  # a new round offers again, from the first candidate who did not decline
        step = steps[i]
        wait = float(step.get("wait_s", 0))
        if step["action"] == "offer":
            while nxt < candidates and nxt in state.declined:
                nxt += 1
            if nxt >= candidates:
                i += 1
                idle_steps += 1
                continue
            effects.append(Effect("offered", nxt))
            return (
                replace(
                    state,
                    status="offered",
                    step_index=i,
                    round=rnd,
                    next_candidate=nxt + 1,
                    offered=nxt,
                    due_in_s=wait,
                ),
                effects,
            )
        effects.append(Effect(step["action"]))
        idle_steps = 0
        status = "escalated"
        if wait > 0:
            return (
                replace(
                    state,
                    status=status,
                    step_index=i,
                    round=rnd,
                    next_candidate=nxt,
                    offered=None,
                    due_in_s=wait,
                ),
                effects,
            )
        i += 1


def start(chain: dict[str, Any], candidates: int) -> tuple[State, list[Effect]]:
    return _perform_from(chain, State(), candidates)


def timeout(chain: dict[str, Any], state: State, candidates: int) -> tuple[State, list[Effect]]:
    """The wait of the current step ended."""
    effects = [Effect("timed_out", state.offered)] if state.offered is not None else []
    nxt, more = _perform_from(
        chain, replace(state, step_index=state.step_index + 1, offered=None), candidates
    )
    return nxt, effects + more


def decline(chain: dict[str, Any], state: State, candidates: int) -> tuple[State, list[Effect]]:
    """The offered caregiver said no: the next step at once."""
    assert state.offered is not None
    declined = state.declined | {state.offered}
    effects = [Effect("declined", state.offered)]
    nxt, more = _perform_from(
        chain,
        replace(state, step_index=state.step_index + 1, offered=None, declined=declined),
        candidates,
    )
    return nxt, effects + more
