"""The monthly run, in the background: every elder in scope evaluated as one batch.

``execute`` loads the scope's facts in one query per kind, evaluates every elder under every
policy in force that covers them, and compares each result with the decision in force for
(elder, policy, month): when neither the facts (hashed) nor the policy version changed,
nothing is written. Otherwise it writes a new decision record (frozen facts, policy hash,
every rule's verdict, the combination applied, the amounts) and, for the lines whose amount
changed, a reversal of the old posting and a posting of the new one. Everything is written
with COPY in the run's single transaction: a crash leaves no half-run, and the run is picked
up again when its lease runs out.

``RunWorker`` claims queued runs (``FOR UPDATE SKIP LOCKED``: any number of replicas), so a
run survives a restart of the process that accepted it. Progress goes to ``subsidy.runs``
on a connection of its own, visible to ``GET /v1/runs/{id}`` while the run is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.subsidy.facts import service as facts_service
from services.subsidy.ledger.service import Draft, grant_legs, period_for, reversed_legs
from services.subsidy.policies import engine
from services.subsidy.policies import service as policies
from services.subsidy.policies.document import PolicyDoc
from services.subsidy.policies.facts import ElderFacts
from shared.config import Settings
from shared.db import new_id, plain_url
from shared.i18n import Lang, T, current_lang

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
CHUNK = 2000  # progress every CHUNK elders
CHUNK_ELDERS = 25_000  # facts in memory at a time

Progress = Callable[[int, int], None]

# A run's notes are stored as codes and read in the reader's language (``note_text``).
NOTE_VISITS_UNAVAILABLE = "visits_unavailable"
NOTES: dict[str, T] = {
    NOTE_VISITS_UNAVAILABLE: T(
        "调度服务的核验上门记录（dispatch.verified_visits）尚不可用：按次补贴为空",
        "dispatch.verified_visits is not there yet: per-visit lines are empty",
    )
}


def note_text(note: str, lang: Lang | None = None) -> str:
    """A stored note for people; a note written before notes were codes reads as it was."""
    known = NOTES.get(note)
    return known.render(lang or current_lang.get()) if known else note


@dataclass
class Summary:
    elders: int = 0
    written: int = 0
    unchanged: int = 0
    postings: int = 0
    reversals: int = 0
    total_fen: int = 0
    notes: list[str] = field(default_factory=list)


def facts_hash(raw: bytes) -> str:
    # change detection, not security: the fastest digest in the standard library
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def snapshot_bytes(f: ElderFacts) -> bytes:
    # orjson serialises dataclasses and dates natively (asyncpg's UUID type via str): the
    # frozen facts, cheaply
    return orjson.dumps(f, default=str)


def verdicts(ev: engine.Evaluation) -> list[dict]:
    out: list[dict] = [
        {
            "rule": line.rule,
            "verdict": "granted",
            "kind": line.kind,
            "amount_fen": line.amount_fen,
            "days": line.days,
            "combination": line.combination,
            "also": list(line.also),
        }
        for line in ev.lines
    ]
    out.extend({"rule": r.rule, "verdict": r.code, "steps": list(r.steps)} for r in ev.refused)
    return out


@dataclass(frozen=True)
class _NoDoc:
    """Stands in for a policy that no longer covers an elder (only its code is read)."""

    code: str
    voucher_grace_days: int = 0


def _covers(doc: PolicyDoc, region: str) -> bool:
    return any(region.startswith(p) for p in doc.regions)


async def execute(
    session: AsyncSession,
    *,
    run_id: uuid.UUID,
    month: date,
    region: str | None,
    actor: str,
    progress: Progress | None = None,
) -> Summary:
    """Run ``month`` for ``region`` (None: everyone) inside ``session``'s transaction, a
    chunk of elders at a time (memory stays bounded; the transaction is still one)."""
    summary = Summary()
    first, last, _ = engine.month_bounds(month)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('subsidy-run:' || :m))"), {"m": str(first)}
    )
    conn = await facts_service.raw_connection(session)
    versions = await policies.in_force(session, month=first)
    docs = [v.doc for v in versions]
    closed = {
        r[0]
        for r in await conn.fetch(
            "SELECT month FROM subsidy.ledger_periods WHERE closed_at IS NOT NULL"
        )
    }
    period = period_for(first, closed)
    ids = await facts_service.elder_ids(
        conn, facts_service.Scope(region=region), start=first, end=last
    )
    total = len(ids)
    summary.elders = total
    if progress:
        progress(0, total)
    cover_cache: dict[tuple[str, ...], list[PolicyDoc]] = {}
    memo: dict = {}
    verdict_json: dict[tuple[int, int], tuple] = {}
    for offset in range(0, total, CHUNK_ELDERS):
        chunk = ids[offset : offset + CHUNK_ELDERS]
        # the chunk by its ids: the region was decided once, by `elder_ids`
        scope = facts_service.Scope(elder_ids=chunk)
        world = await facts_service.load(conn, scope, start=first, end=last)
        if not world.visits_available and not summary.notes:
            summary.notes.append(NOTE_VISITS_UNAVAILABLE)
        current = await _current(conn, first, [elder.elder_id for elder in world.elders])
        decisions: list[tuple] = []
        cur_rows: list[tuple] = []
        lines: list[tuple] = []
        postings: list[tuple] = []
        entries: list[tuple] = []
        reversed_pairs: list[tuple[uuid.UUID, uuid.UUID]] = []
        voucher_delta: dict[tuple, int] = defaultdict(int)
        barred = world.barred_orgs
        stale_codes: dict[uuid.UUID, list[str]] = defaultdict(list)
        for key in current:
            if key[0] != "lines" and current.get(("lines", *key)):
                stale_codes[key[0]].append(key[1])
        for i, elder in enumerate(world.elders, start=offset):
            # Every hukou of the month: an elder who moved mid-month is evaluated under the
            # policies of both places, each paying its own days.
            hukous = elder.hukou_regions(first, last) if elder.moves else (elder.hukou_region,)
            region_docs = cover_cache.get(hukous)
            if region_docs is None:
                region_docs = cover_cache[hukous] = [
                    d for d in docs if any(_covers(d, h) for h in hukous)
                ]
            if region_docs:
                raw = snapshot_bytes(elder)
                fh = facts_hash(raw)
                for doc in region_docs:
                    key = (elder.elder_id, doc.code)
                    held = current.get(key)
                    if held is not None and held[1] == doc.hash and held[2] == fh:
                        summary.unchanged += 1
                        summary.total_fen += held[3]
                        continue
                    ev = engine.evaluate(
                        doc, elder, first, barred_orgs=barred, explain=False, memo=memo
                    )
                    summary.written += 1
                    summary.total_fen += ev.total_fen
                    vkey = (id(ev.lines), id(ev.refused))
                    held_v = verdict_json.get(vkey)
                    if held_v is None or held_v[0] is not ev.lines or held_v[1] is not ev.refused:
                        # memoised results share their tuples: their verdicts are serialised once
                        held_v = verdict_json[vkey] = (
                            ev.lines,
                            ev.refused,
                            orjson.dumps(verdicts(ev)).decode(),
                        )
                    decision_id = new_id()
                    decisions.append(
                        (
                            decision_id,
                            run_id,
                            elder.elder_id,
                            first,
                            doc.code,
                            doc.version,
                            doc.hash,
                            raw.decode(),
                            fh,
                            held_v[2],
                            ev.total_fen,
                        )
                    )
                    cur_rows.append(
                        (elder.elder_id, doc.code, first, decision_id, doc.hash, fh, ev.total_fen)
                    )
                    _diff(
                        elder,
                        doc,
                        ev,
                        first,
                        period,
                        run_id,
                        decision_id,
                        actor,
                        held_lines=current.get(("lines", *key), []),
                        lines=lines,
                        postings=postings,
                        entries=entries,
                        reversed_pairs=reversed_pairs,
                        voucher_delta=voucher_delta,
                        summary=summary,
                    )
            for code in stale_codes.get(elder.elder_id, ()):
                if any(d.code == code for d in region_docs):
                    continue
                # No longer covered (hukou moved, policy ended): what it granted is reversed.
                raw = snapshot_bytes(elder)
                ev = engine.Evaluation(elder.elder_id, first, code, 0, "-", (), ())
                decision_id = new_id()
                summary.written += 1
                decisions.append(
                    (
                        decision_id,
                        run_id,
                        elder.elder_id,
                        first,
                        code,
                        0,
                        "-",
                        raw.decode(),
                        facts_hash(raw),
                        orjson.dumps([{"rule": "*", "verdict": "not_covered"}]).decode(),
                        0,
                    )
                )
                cur_rows.append((elder.elder_id, code, first, decision_id, "-", facts_hash(raw), 0))
                _diff(
                    elder,
                    _NoDoc(code),
                    ev,
                    first,
                    period,
                    run_id,
                    decision_id,
                    actor,
                    held_lines=current.get(("lines", elder.elder_id, code), []),
                    lines=lines,
                    postings=postings,
                    entries=entries,
                    reversed_pairs=reversed_pairs,
                    voucher_delta=voucher_delta,
                    summary=summary,
                )
            if progress and (i + 1) % CHUNK == 0:
                progress(i + 1, total)
                await asyncio.sleep(0)  # let the progress heartbeat and other requests run
        await _write(
            conn,
            decisions=decisions,
            cur_rows=cur_rows,
            lines=lines,
            postings=postings,
            entries=entries,
            reversed_pairs=reversed_pairs,
            voucher_delta=voucher_delta,
            month=first,
        )
    if progress:
        progress(total, total)
    return summary


_CURRENT_DECISIONS = (
    "SELECT elder_id, policy_code, decision_id, policy_hash, facts_hash, total_fen"
    " FROM subsidy.current_decisions WHERE month = $1 AND elder_id = ANY($2::uuid[])"
)
_CURRENT_LINES = (
    "SELECT elder_id, policy_code, id, rule, pay_to, fund, org_id, amount_fen, posting_id"
    " FROM subsidy.decision_lines"
    " WHERE month = $1 AND elder_id = ANY($2::uuid[]) AND reversed_by IS NULL"
)


async def _current(conn: asyncpg.Connection, month: date, elders: list[uuid.UUID]) -> dict:
    """Decisions in force for the month (and their current lines) of the elders whose facts
    were loaded: exactly the run's scope, decided once, by the facts (``facts.service``)."""
    out: dict = {}
    for r in await conn.fetch(_CURRENT_DECISIONS, month, elders):
        out[(r[0], r[1])] = (r[2], r[3], r[4], r[5])
    for r in await conn.fetch(_CURRENT_LINES, month, elders):
        out.setdefault(("lines", r[0], r[1]), []).append(tuple(r[2:]))
    return out


def _diff(
    elder: ElderFacts,
    doc: PolicyDoc,
    ev: engine.Evaluation,
    month: date,
    period: date,
    run_id: uuid.UUID,
    decision_id: uuid.UUID,
    actor: str,
    *,
    held_lines: list[tuple],
    lines: list,
    postings: list,
    entries: list,
    reversed_pairs: list,
    voucher_delta: dict,
    summary: Summary,
) -> None:
    """New lines against the lines in force: same (rule, payee, fund, amount) stays; the rest
    is reversed and posted anew."""
    held: dict[tuple, list[tuple]] = defaultdict(list)
    for h in held_lines:
        # (id, rule, pay_to, fund, org_id, amount, posting_id)
        held[(h[1], h[2], h[3], h[4], h[5])].append(h)
    new_parts = []
    for line in ev.lines:
        for part in line.parts:
            if part.amount_fen <= 0:
                continue
            org = part.org_id if line.pay_to == "org" else None
            k = (line.rule, line.pay_to, line.fund, org, part.amount_fen)
            if held.get(k):
                held[k].pop()  # unchanged: its posting stands
                continue
            new_parts.append((line, part, org))
    for stale in (h for group in held.values() for h in group):
        line_id, rule, pay_to, fund, org, amount, posting_id = stale
        legs = reversed_legs(
            grant_legs(pay_to=pay_to, fund=fund, amount=amount, elder_id=elder.elder_id, org_id=org)
        )
        d = Draft(
            kind="reversal",
            period=period,
            legs=legs,
            created_by=actor,
            entitlement_month=month,
            run_id=run_id,
            reverses=posting_id,
            elder_id=elder.elder_id,
            org_id=org,
            policy_code=doc.code,
            rule=rule,
            memo="facts changed: re-run",
        )
        _add_posting(d, postings, entries)
        reversed_pairs.append((line_id, decision_id))
        if pay_to == "voucher":
            voucher_delta[(elder.elder_id, doc.code, month, fund, doc.voucher_grace_days)] -= amount
        summary.reversals += 1
    for line, part, org in new_parts:
        d = Draft(
            kind="entitlement",
            period=period,
            legs=grant_legs(
                pay_to=line.pay_to,
                fund=line.fund,
                amount=part.amount_fen,
                elder_id=elder.elder_id,
                org_id=org,
            ),
            created_by=actor,
            entitlement_month=month,
            run_id=run_id,
            elder_id=elder.elder_id,
            org_id=org,
            policy_code=doc.code,
            rule=line.rule,
        )
        _add_posting(d, postings, entries)
        lines.append(
            (
                new_id(),
                decision_id,
                elder.elder_id,
                month,
                doc.code,
                line.rule,
                line.kind,
                line.pay_to,
                line.fund,
                org,
                part.amount_fen,
                part.days,
                line.combination,
                d.id,
            )
        )
        if line.pay_to == "voucher":
            voucher_delta[(elder.elder_id, doc.code, month, line.fund, doc.voucher_grace_days)] += (
                part.amount_fen
            )
        summary.postings += 1


def _add_posting(d: Draft, postings: list, entries: list) -> None:
    postings.append(
        (
            d.id,
            d.period,
            d.entitlement_month,
            d.kind,
            d.run_id,
            d.reverses,
            d.elder_id,
            d.org_id,
            d.policy_code,
            d.rule,
            d.memo,
            d.created_by,
        )
    )
    for leg in d.legs:
        entries.append(
            (d.id, d.period, leg.account, leg.fund, leg.elder_id, leg.org_id, leg.amount_fen)
        )


async def _write(
    conn: asyncpg.Connection,
    *,
    decisions: list,
    cur_rows: list,
    lines: list,
    postings: list,
    entries: list,
    reversed_pairs: list,
    voucher_delta: dict,
    month: date,
) -> None:
    if decisions:
        await conn.copy_records_to_table(
            "decisions",
            schema_name="subsidy",
            columns=[
                "id",
                "run_id",
                "elder_id",
                "month",
                "policy_code",
                "policy_version",
                "policy_hash",
                "facts",
                "facts_hash",
                "verdicts",
                "total_fen",
            ],
            records=decisions,
        )
    if cur_rows:
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS run_current (LIKE subsidy.current_decisions) ON "
            "COMMIT DROP"
        )
        await conn.copy_records_to_table(
            "run_current",
            columns=[
                "elder_id",
                "policy_code",
                "month",
                "decision_id",
                "policy_hash",
                "facts_hash",
                "total_fen",
            ],
            records=cur_rows,
        )
        await conn.execute(
            "INSERT INTO subsidy.current_decisions SELECT * FROM run_current"
            " ON CONFLICT (elder_id, policy_code, month) DO UPDATE SET"
            " decision_id = excluded.decision_id, policy_hash = excluded.policy_hash,"
            " facts_hash = excluded.facts_hash, total_fen = excluded.total_fen"
        )
        await conn.execute("DROP TABLE run_current")
    if postings:
        await conn.copy_records_to_table(
            "ledger_postings",
            schema_name="subsidy",
            columns=[
                "id",
                "period",
                "entitlement_month",
                "kind",
                "run_id",
                "reverses",
                "elder_id",
                "org_id",
                "policy_code",
                "rule",
                "memo",
                "created_by",
            ],
            records=postings,
        )
        # one COPY for every entry: the balance trigger sees each posting whole
        await conn.copy_records_to_table(
            "ledger_entries",
            schema_name="subsidy",
            columns=["posting_id", "period", "account", "fund", "elder_id", "org_id", "amount_fen"],
            records=entries,
        )
    if lines:
        await conn.copy_records_to_table(
            "decision_lines",
            schema_name="subsidy",
            columns=[
                "id",
                "decision_id",
                "elder_id",
                "month",
                "policy_code",
                "rule",
                "kind",
                "pay_to",
                "fund",
                "org_id",
                "amount_fen",
                "days",
                "combination",
                "posting_id",
            ],
            records=lines,
        )
    if reversed_pairs:
        await conn.execute(
            "UPDATE subsidy.decision_lines d SET reversed_by = r.by FROM"
            " unnest($1::uuid[], $2::uuid[]) AS r(id, by) WHERE d.id = r.id",
            [p[0] for p in reversed_pairs],
            [p[1] for p in reversed_pairs],
        )
    if voucher_delta:
        keys = [k for k, v in voucher_delta.items() if v]
        if keys:
            _, last, _ = engine.month_bounds(month)
            await conn.execute(
                "INSERT INTO subsidy.vouchers (id, elder_id, policy_code, month, fund, amount_fen,"
                " redeemed_fen, lapsed_fen, redeemable_until)"
                " SELECT v.id, v.elder_id, v.policy_code, v.month, v.fund, v.amount, 0, 0, v.until"
                " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::date[], $5::text[], "
                "$6::bigint[],"
                " $7::date[]) AS v(id, elder_id, policy_code, month, fund, amount, until)"
                " ON CONFLICT (elder_id, policy_code, month, fund) DO UPDATE SET"
                " amount_fen = subsidy.vouchers.amount_fen + excluded.amount_fen, updated_at = "
                "now()",
                [new_id() for _ in keys],
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                [k[3] for k in keys],
                [voucher_delta[k] for k in keys],
                [last + timedelta(days=k[4]) for k in keys],
            )


class RunWorker:
    """Claims queued runs and executes them (one at a time per process)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, poll: float = 2.0
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.poll = poll
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="subsidy-run-worker")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _loop(self) -> None:
        woken = 0.0
        while True:
            try:
                claimed = await self.claim_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("run worker: claim failed", exc_info=True)
                claimed = False
            if not claimed:
                # woken by a POST that has not committed yet: look again soon, for a while
                soon = time.monotonic() - woken < 3.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.1 if soon else self.poll)
                if self._wake.is_set():
                    woken = time.monotonic()
                self._wake.clear()

    async def claim_one(self) -> bool:
        async with self.sessionmaker.begin() as session:
            row = (
                await session.execute(
                    text(
                        "UPDATE subsidy.runs SET status = 'running', lease_until = now() + :lease,"
                        " started_at = coalesce(started_at, now()) WHERE id = ("
                        " SELECT id FROM subsidy.runs WHERE status = 'queued'"
                        " OR (status = 'running' AND lease_until < now())"
                        " ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
                        " RETURNING id, month, region, requested_by"
                    ),
                    {"lease": LEASE},
                )
            ).first()
        if row is None:
            return False
        await run_claimed(self.sessionmaker, self.settings, row[0], row[1], row[2], row[3])
        return True


async def run_claimed(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    run_id: uuid.UUID,
    month: date,
    region: str | None,
    actor: str,
    on_progress: Progress | None = None,
) -> Summary | None:
    """Execute a claimed run; progress and the lease go through a connection of their own."""
    reporter = await asyncpg.connect(plain_url(settings.database_url or ""))
    last_beat = 0.0
    pending: list[asyncio.Task] = []

    def progress(done: int, total: int) -> None:
        nonlocal last_beat
        if on_progress:
            on_progress(done, total)
        now = time.monotonic()
        if now - last_beat < 0.5 and done != total:
            return
        last_beat = now
        pending.append(
            asyncio.ensure_future(
                reporter.execute(
                    "UPDATE subsidy.runs SET elders_done = $2, elders_total = $3,"
                    " lease_until = now() + $4::interval WHERE id = $1",
                    run_id,
                    done,
                    total,
                    LEASE,
                )
            )
        )

    gc_was = gc.isenabled()
    try:
        # a batch of short-lived objects without cycles: collecting during it is pure cost
        gc.disable()
        async with sessionmaker.begin() as session:
            summary = await execute(
                session, run_id=run_id, month=month, region=region, actor=actor, progress=progress
            )
            for task in pending:
                with contextlib.suppress(Exception):
                    await task
            await session.execute(
                text(
                    "UPDATE subsidy.runs SET status = 'succeeded', finished_at = now(),"
                    " elders_total = :n, elders_done = :n, decisions_written = :w,"
                    " decisions_unchanged = :u, postings = :p, reversals = :r, total_fen = :t,"
                    " notes = CAST(:notes AS jsonb), lease_until = NULL WHERE id = :id"
                ),
                {
                    "id": run_id,
                    "n": summary.elders,
                    "w": summary.written,
                    "u": summary.unchanged,
                    "p": summary.postings,
                    "r": summary.reversals,
                    "t": summary.total_fen,
                    "notes": orjson.dumps(summary.notes).decode(),
                },
            )
        return summary
    except Exception as exc:
        log.exception("run %s failed", run_id)
        for task in pending:
            with contextlib.suppress(Exception):
                await task
        await reporter.execute(
            "UPDATE subsidy.runs SET status = 'failed', error = $2, finished_at = now(),"
            " lease_until = NULL WHERE id = $1",
            run_id,
            f"{type(exc).__name__}: {exc}"[:2000],
        )
        return None
    finally:
        if gc_was:
            gc.enable()
        await reporter.close()


def now() -> datetime:
    return datetime.now(UTC)
