"""``opsmesh rules check|test``, ``opsmesh check-config`` and ``opsmesh setup-default-alerts``.

Joined to the ``opsmesh`` CLI through the ``opsmesh.cli`` entry points in this service's
pyproject. Exit codes follow promtool: 0 all good, 1 an invalid file or a failed test.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from importlib import resources
from pathlib import Path

import click

from alert_engine.core.amconfig import ConfigError, parse_config
from alert_engine.core.contract import rule_problems
from alert_engine.core.rules import Rule, RuleFileError, parse_rules
from alert_engine.core.ruletest import RuleTestError, run_tests

RULES_FILES_ENV = "ALERT_ENGINE_RULES_FILES"
BUILTIN_RULES = "default.yml"
BUILTIN_TESTS = "default_test.yml"
# The built-in rules link runbooks by repository-relative path; --runbook-base turns them
# into URLs where the runbooks are published.
_RUNBOOK_LINK = re.compile(r"""(runbook_url:\s*["']?)runbooks/""")


def builtin_text(name: str = BUILTIN_RULES) -> str:
    return resources.files("alert_engine.builtin_rules").joinpath(name).read_text("utf-8")


@click.group()
def rules() -> None:
    """Validate and unit-test alerting rule files."""


@rules.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--catalogue",
    "against_catalogue",
    is_flag=True,
    help="Also fail on signals, stats and labels no service emits (`opsmesh signals`);"
    " for rules on the mesh's own signals, not on your applications' metrics.",
)
def check(files: tuple[Path, ...], against_catalogue: bool) -> None:
    """Validate rule FILES; every error in a file is reported in one run, each naming
    its file, group, rule and field."""
    failed = False
    for path in files:
        try:
            found = parse_rules(path.read_text("utf-8"), source=str(path))
            if against_catalogue:
                errors = [
                    f"{path}: group {rule.group} rule {rule.name}: {problem}"
                    for rule in found
                    for problem in rule_problems(rule)
                ]
                if errors:
                    raise RuleFileError(errors)
        except OSError as exc:
            click.echo(f"{path}: cannot read: {exc.strerror or exc}", err=True)
            failed = True
        except RuleFileError as exc:
            for error in exc.errors:
                click.echo(error, err=True)
            click.echo(f"{path}: FAILED, {len(exc.errors)} error(s)", err=True)
            failed = True
        else:
            click.echo(f"{path}: SUCCESS, {len(found)} rule(s)")
    raise SystemExit(1 if failed else 0)


@rules.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def test(files: tuple[Path, ...]) -> None:
    """Run promtool-style rule unit tests in simulated time (format: alert_engine.core.ruletest)."""
    failed = False
    for path in files:
        click.echo(f"{path}:")

        def load(name: str, base: Path = path.parent) -> list[Rule]:
            rule_path = base / name
            return parse_rules(rule_path.read_text("utf-8"), source=str(rule_path))

        try:
            results = run_tests(path.read_text("utf-8"), str(path), load)
        except OSError as exc:
            click.echo(f"  ERROR cannot read {exc.filename or path}: {exc.strerror or exc}")
            failed = True
            continue
        except (RuleFileError, RuleTestError) as exc:
            click.echo(f"  ERROR {exc}")
            failed = True
            continue
        for result in results:
            click.echo(f"  {'PASS' if result.passed else 'FAIL'}  {result.name}")
            for failure in result.failures:
                click.echo("\n".join(f"        {line}" for line in failure.splitlines()))
        passed = sum(r.passed for r in results)
        failed = failed or passed < len(results)
        click.echo(f"  {passed}/{len(results)} passed")
    raise SystemExit(1 if failed else 0)


def _default_output() -> Path | None:
    """The first file the engine loads rules from, so the installed rules are used."""
    entries = [p.strip() for p in os.environ.get(RULES_FILES_ENV, "").split(",")]
    first = next((p for p in entries if p), None)
    return Path(first) if first else None


def tests_path(rules_path: Path) -> Path:
    """Where the rule tests go: beside the rules, ``<name>_test<suffix>``."""
    return rules_path.with_name(f"{rules_path.stem}_test{rules_path.suffix or '.yml'}")


_RULE_FILES_LINE = re.compile(r"^rule_files: \[.*\]$", re.MULTILINE)
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # needs no YAML quotes


@click.command("setup-default-alerts")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"Where to write the rules (default: the first file in ${RULES_FILES_ENV}); their"
    " unit tests go beside them as <name>_test.yml.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option(
    "--runbook-base",
    metavar="URL",
    help="Link runbooks under URL instead of the repository-relative runbooks/ path.",
)
def setup_default_alerts(output: Path | None, force: bool, runbook_base: str | None) -> None:
    """Install the built-in alerting rules (errors, latency, queries, health, pipeline)
    and their unit tests (`opsmesh rules test <name>_test.yml`)."""
    target = output or _default_output()
    if target is None:
        raise click.UsageError(f"give --output or set {RULES_FILES_ENV}")
    tests_target = tests_path(target)
    for path in (target, tests_target):
        if path.exists() and not force:
            click.echo(f"{path} exists; use --force to overwrite it", err=True)
            raise SystemExit(1)
    text, tests = builtin_text(), builtin_text(BUILTIN_TESTS)
    # The tests name the rule file and expect its runbook links: both follow the install.
    name = target.name if _PLAIN_NAME.match(target.name) else json.dumps(target.name)
    tests = _RULE_FILES_LINE.sub(f"rule_files: [{name}]", tests, count=1)
    text = text.replace(BUILTIN_TESTS, tests_target.name)  # the header's pointer to them
    if runbook_base:
        base = runbook_base.rstrip("/")
        text = _RUNBOOK_LINK.sub(lambda m: f"{m.group(1)}{base}/", text)
        tests = _RUNBOOK_LINK.sub(lambda m: f"{m.group(1)}{base}/", tests)
    installed = parse_rules(text, source=str(target))  # never write a file the engine rejects
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, "utf-8")
    tests_target.write_text(tests, "utf-8")
    click.echo(f"wrote {len(installed)} rules to {target} and their tests to {tests_target}")


@click.group()
def alerts() -> None:
    """Ask a running alert-engine about alerts."""


@alerts.command("explain")
@click.argument("labels")
@click.option(
    "--url",
    envvar="ALERT_ENGINE_URL",
    default="http://127.0.0.1:8082",
    show_default=True,
    help="The alert-engine to ask ($ALERT_ENGINE_URL).",
)
def explain(labels: str, url: str) -> None:
    """Where an alert with LABELS (e.g. '{alertname="X",team="db"}') would go: matching
    routes, receiver, group key, timers, and what silences or inhibits it."""
    text = labels if labels.strip().startswith("{") else "{" + labels + "}"
    query = urllib.parse.urlencode({"labels": text})
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/explain?{query}", timeout=10) as r:  # noqa: S310 - the operator's own engine
            found = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{exc.code}: {exc.read().decode(errors='replace')}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    click.echo(f"labels: {found['labels']}")
    for route in found["routes"]:
        timers = route["timers"]
        click.echo(
            f"route {route['route_id']} {route['route_key']} -> receiver {route['receiver']}\n"
            f"  group key: {route['group_key']}\n"
            f"  timers: group_wait {timers['group_wait']}, group_interval "
            f"{timers['group_interval']}, repeat_interval {timers['repeat_interval']}"
            + (f"\n  time-muted now: {route['time_muted_now']}" if route["time_muted_now"] else "")
        )
    click.echo(f"silenced by: {', '.join(found['silenced_by']) or 'nothing'}")
    inhibited = found["inhibited_by"]
    click.echo(
        "inhibited by: "
        + (
            f"alert {inhibited['source_fingerprint']} (equal on {inhibited['equal']})"
            if inhibited
            else "nothing"
        )
    )


@click.command("check-config")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check_config(files: tuple[Path, ...]) -> None:
    """Validate Alertmanager configuration FILES as the alert-engine and the notifier load
    them (``amtool check-config``'s counterpart): exit 0 when every file is valid, 1 when
    one is not. An integration the notifier does not implement is an error naming the
    receiver (docs/alertmanager-compat.md)."""
    failed = False
    for path in files:
        try:
            config = parse_config(path.read_text("utf-8"), path.resolve().parent)
        except OSError as exc:
            click.echo(f"{path}: FAILED: cannot read: {exc.strerror or exc}", err=True)
            failed = True
        except ConfigError as exc:
            click.echo(f"{path}: FAILED: {exc}", err=True)
            failed = True
        else:
            click.echo(
                f"{path}: SUCCESS, {len(config.receivers)} receiver(s), "
                f"{len(config.inhibit_rules)} inhibit rule(s), "
                f"{len(config.time_intervals)} time interval(s)"
            )
    raise SystemExit(1 if failed else 0)
