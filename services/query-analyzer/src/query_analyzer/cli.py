"""``opsmesh optimize-queries`` and ``opsmesh create-missing-indexes`` (entry points).

Every ``opsmesh`` invocation loads this module to list commands, so the heavy imports
happen inside the commands.
"""
# ruff: noqa: PLC0415

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from opsmesh.clock import SystemClock
from opsmesh.settings import ENV_PG

_TARGET_ENV = "QUERY_ANALYZER_TARGET_DSN"


def _options(f: Any) -> Any:
    f = click.option(
        "--dsn", envvar=ENV_PG, required=True, help="opsmesh PostgreSQL (default: $OPSMESH_PG_DSN)."
    )(f)
    f = click.option(
        "--target-dsn",
        envvar=_TARGET_ENV,
        help=f"The analysed database, for EXPLAIN and index advice (default: ${_TARGET_ENV}).",
    )(f)
    f = click.option(
        "--database",
        help="Only queries whose events name this database (the target's name in events).",
    )(f)
    return click.option("--top", default=20, show_default=True, help="How many fingerprints.")(f)


async def _analyse(
    dsn: str, target_dsn: str | None, database: str | None, top: int, analyze: bool
) -> tuple[Any, Any]:
    from opsmesh.db.pool import open_pool
    from query_analyzer.pipeline.analysis import AnalysisConfig, Analyzer
    from query_analyzer.pipeline.signals import MemorySignalSink
    from query_analyzer.target.explain import TargetDatabase

    pool = await open_pool(dsn, name="opsmesh-cli", max_size=2)
    target = TargetDatabase(target_dsn, analyze_enabled=analyze) if target_dsn else None
    # Signals are the service's job; the CLI only reports.
    analyzer = Analyzer(
        pool=pool,
        signals=MemorySignalSink(),
        clock=SystemClock(),
        config=AnalysisConfig(top_n=top, analyze=analyze),
        target=target,
        target_database=database,
    )
    await analyzer.run_once()
    return pool, analyzer


@click.command("optimize-queries")
@_options
@click.option("--analyze", is_flag=True, help="EXPLAIN ANALYZE (runs the samples; rolled back).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def optimize_queries(
    *,
    dsn: str,
    target_dsn: str | None,
    database: str | None,
    top: int,
    analyze: bool,
    as_json: bool,
) -> None:
    """Report top queries, N+1 findings, plan problems and index advice."""
    report = asyncio.run(_report(dsn, target_dsn, database, top, analyze))
    if as_json:
        click.echo(json.dumps(report, default=str, indent=2))
        return
    click.echo(render(report))


async def _report(
    dsn: str, target_dsn: str | None, database: str | None, top: int, analyze: bool
) -> dict[str, Any]:
    from query_analyzer.storage.findings import FindingStore
    from query_analyzer.storage.stats import QueryStats

    pool, _ = await _analyse(dsn, target_dsn, database, top, analyze)
    try:
        findings = FindingStore(pool)
        return {
            "top_queries": await QueryStats(pool).top(top, database=database),
            "n_plus_one": await findings.findings(limit=top, kind="n_plus_one", database=database),
            "regressions": await findings.findings(
                limit=top, kind="p95_regression", database=database
            ),
            "plan_problems": await findings.findings(
                limit=top, kind="plan_problem", database=database
            ),
            "recommendations": await findings.recommendations(limit=top, database=database),
            "target": "analysed" if target_dsn else "not configured (no EXPLAIN, no advice)",
        }
    finally:
        await pool.close()


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render(report: dict[str, Any]) -> str:
    lines = ["== Top queries by total time =="]
    for q in report["top_queries"]:
        lines.append(
            f"{q['fingerprint']} [{q['database']}] calls={q['calls']} total={_ms(q['total_ms'])}ms"
            f" mean={_ms(q['mean_ms'])} p50={_ms(q['p50_ms'])} p95={_ms(q['p95_ms'])}"
            f" p99={_ms(q['p99_ms'])} max={_ms(q['max_ms'])}"
        )
        lines.append(f"    {q['display_sql'][:200]}")
    for title, key in (
        ("N+1 findings", "n_plus_one"),
        ("p95 regressions", "regressions"),
        ("Plan problems", "plan_problems"),
    ):
        lines.append(f"\n== {title} ==")
        if not report[key]:
            lines.append("(none)")
        for f in report[key]:
            lines.append(f"{f['fingerprint']} [{f['database']}] x{f['occurrences']}: {f['title']}")
    lines.append(f"\n== Index advice (target: {report['target']}) ==")
    if not report["recommendations"]:
        lines.append("(none)")
    for r in report["recommendations"]:
        if r["ddl"]:
            validated = "validated with HypoPG" if r["validated"] else "UNVALIDATED (no HypoPG)"
            lines.append(
                f"{r['ddl']};  -- {validated}; cost {_ms(r['cost_before'])} -> "
                f"{_ms(r['cost_after'])}, est. saved {_ms(r['time_saved_ms'])} ms"
                f" [{r['fingerprint']}]"
            )
        else:
            lines.append(f"no index for {r['fingerprint']} [{r['database']}]: {r['reason']}")
    return "\n".join(lines)


@click.command("create-missing-indexes")
@_options
@click.option(
    "--apply",
    is_flag=True,
    help="Create the indexes (CONCURRENTLY, one at a time); default is a dry run.",
)
@click.option(
    "--include-unvalidated", is_flag=True, help="Also create advice HypoPG could not check."
)
def create_missing_indexes(
    *,
    dsn: str,
    target_dsn: str | None,
    database: str | None,
    top: int,
    apply: bool,
    include_unvalidated: bool,
) -> None:
    """Print (or with --apply create) the recommended indexes for the target database."""
    if not target_dsn:
        raise click.UsageError(f"--target-dsn (or ${_TARGET_ENV}) is required")
    code = asyncio.run(
        _create(dsn, target_dsn, database, top, apply=apply, unvalidated=include_unvalidated)
    )
    raise SystemExit(code)


async def _create(
    dsn: str,
    target_dsn: str,
    database: str | None,
    top: int,
    *,
    apply: bool,
    unvalidated: bool,
) -> int:
    from query_analyzer.core.advice import index_name
    from query_analyzer.core.candidates import IndexCandidate
    from query_analyzer.storage.findings import FindingStore
    from query_analyzer.storage.stats import QueryStats
    from query_analyzer.target.apply import ApplyOutcome, IndexToCreate, apply_indexes

    pool, _ = await _analyse(dsn, target_dsn, database, top, analyze=False)
    try:
        recs = await FindingStore(pool).recommendations(
            limit=top, database=database, actionable=True
        )
        chosen, seen = [], set()
        for r in recs:
            if not (r["validated"] or unvalidated) or r["ddl"] in seen:
                continue
            seen.add(r["ddl"])
            stats = await QueryStats(pool).one(r["fingerprint"])
            sample = next(s["sample_sql"] for s in stats if s["database"] == r["database"])
            candidate = IndexCandidate(r["table_name"], tuple(r["columns"]))
            chosen.append(
                (r, IndexToCreate(index_name(candidate), r["table_name"], r["ddl"], sample))
            )
        if not chosen:
            click.echo("no missing indexes to create")
            return 0
        for r, index in chosen:
            click.echo(
                f"{index.ddl};  -- cost {_ms(r['cost_before'])} -> {_ms(r['cost_after'])},"
                f" est. saved {_ms(r['time_saved_ms'])} ms, fingerprint {r['fingerprint']}"
            )
        if not apply:
            click.echo("dry run: nothing created (use --apply)")
            return 0
        results = await apply_indexes(target_dsn, [i for _, i in chosen])
        failed = False
        for (r, _), result in zip(chosen, results, strict=True):
            click.echo(f"{result.index}: {result.outcome.value} {result.detail}".rstrip())
            if result.outcome in (ApplyOutcome.CREATED_AND_USED, ApplyOutcome.ALREADY_EXISTS):
                await FindingStore(pool).set_status(r["fingerprint"], r["database"], "applied")
            elif result.outcome in (ApplyOutcome.FAILED, ApplyOutcome.INVALID_LEFTOVER):
                failed = True
        return 1 if failed else 0
    finally:
        await pool.close()
