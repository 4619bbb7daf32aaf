"""`eldercare policy test` (every bundled policy's case table) and `eldercare subsidy run
--month YYYY-MM` (a monthly run in this process, with a progress bar)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.config import Settings


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="policy documents: validate and run their case tables")
    policy = p.add_subparsers(dest="policy_command", required=True)
    t = policy.add_parser("test", help="run the case tables shipped beside each policy")
    t.add_argument("--policy", help="only this policy code")
    t.add_argument("-v", "--verbose", action="store_true", help="print every case")
    t.set_defaults(func=cmd_policy_test)

    p = sub.add_parser("subsidy", help="subsidy operations")
    subsidy = p.add_subparsers(dest="subsidy_command", required=True)
    r = subsidy.add_parser("run", help="run a month for every elder (or a region) now")
    r.add_argument("--month", required=True, help="YYYY-MM")
    r.add_argument("--region", help="division-code prefix (default: every region)")
    r.add_argument("--data-dir")
    r.set_defaults(func=cmd_subsidy_run)


def cmd_policy_test(args: argparse.Namespace) -> int:
    from services.subsidy.policies.cases import load_tables, run_table
    from services.subsidy.policies.predicates import PolicyInvalid

    failed = total = 0
    for path, table in load_tables():
        if args.policy and table["policy"] != args.policy:
            continue
        try:
            results = run_table(table)
        except PolicyInvalid as exc:
            print(f"✗ {path.name}: the policy does not validate: {exc}")
            failed += 1
            continue
        bad = [r for r in results if not r.ok]
        total += len(results)
        failed += len(bad)
        mark = "✓" if not bad else "✗"
        print(f"{mark} {path.name}: {len(results) - len(bad)}/{len(results)} cases")
        for r in results:
            if not r.ok or args.verbose:
                print(f"    {'ok  ' if r.ok else 'FAIL'} {r.month:%Y-%m} {r.name}")
                for problem in r.problems:
                    print(f"         {problem}")
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed or not total else 0


def cmd_subsidy_run(args: argparse.Namespace) -> int:
    from services.subsidy.common import parse_month
    from services.subsidy.runs.worker import note_text
    from shared.errors import Problem

    settings = Settings()
    if args.data_dir:
        from pathlib import Path

        settings.data_dir = Path(args.data_dir)
    if not settings.database_url:
        print("eldercare subsidy run: set ELDERCARE_DATABASE_URL", file=sys.stderr)
        return 2
    try:
        month = parse_month(args.month)
    except Problem as exc:
        print(f"eldercare subsidy run: {exc}", file=sys.stderr)
        return 2
    summary = asyncio.run(_run(settings, month, args.region))
    if summary is None:
        return 1
    print(
        f"{args.month}: {summary.elders} elders, {summary.written} decisions written, "
        f"{summary.unchanged} unchanged, {summary.postings} postings, {summary.reversals} "
        f"reversals, payable {summary.total_fen / 100:.2f} yuan"
    )
    for note in summary.notes:
        print(f"note: {note_text(note, 'en')}")
    return 0


async def _run(settings: Settings, month, region: str | None):
    from tqdm import tqdm

    from services.subsidy.policies import service as policies
    from services.subsidy.runs.models import Run
    from services.subsidy.runs.worker import run_claimed
    from shared.db import create_engine, create_sessionmaker

    engine = create_engine(settings.database_url or "", pool_size=2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker.begin() as session:
            await policies.sync_bundled(session)
            run = Run(month=month, region=region, status="running", requested_by="cli", notes=[])
            session.add(run)
            await session.flush()
            run_id = run.id
        bar = tqdm(total=0, unit="elder", desc=f"{month:%Y-%m}")

        def progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        summary = await run_claimed(sessionmaker, settings, run_id, month, region, "cli", progress)
        bar.close()
        return summary
    finally:
        await engine.dispose()
