"""Static contract for ``compose/``: what ``docker compose up`` would start must match what
the services actually read. No Docker engine is needed (or used): the files are parsed and
checked against the settings classes, the Dockerfiles and the Prometheus config. The stack
itself is started and exercised by tests/compose (``make compose-test``)."""

from __future__ import annotations

import ipaddress
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

from alert_engine.core.rules import parse_rules
from alert_engine.core.runbooks import DEFAULT_RUNBOOK_BASE_URL
from alert_engine.settings import AlertEngineSettings
from console.settings import ConsoleSettings
from health_aggregator.settings import HealthAggregatorSettings
from metrics_ingest.settings import MetricsIngestSettings
from notifier.settings import NotifierSettings
from opsmesh.settings import CommonSettings
from opsmesh_dev.tools.mesh import CONSOLE
from opsmesh_dev.tools.mesh import SERVICES as MESH_SERVICES
from query_analyzer.settings import QueryAnalyzerSettings

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "runbooks"
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
# Made by compose/images/base.sh (debootstrap + docker import); no registry image is used.
BASE_IMAGE = "opsmesh-debian:bookworm"
WITH_TOKEN = COMPOSE_DIR / "tokens" / "with-token.sh"
# The one bind mount from outside the repository: the node exporter reads the host's root
# file system (read-only) to report its disks.
HOST_MOUNTS = {("node-exporter", Path("/"))}

# compose service name -> (python module, settings class)
SERVICES: dict[str, tuple[str, type[CommonSettings]]] = {
    "metrics-ingest": ("metrics_ingest", MetricsIngestSettings),
    "alert-engine": ("alert_engine", AlertEngineSettings),
    "notifier": ("notifier", NotifierSettings),
    "query-analyzer": ("query_analyzer", QueryAnalyzerSettings),
    "health-aggregator": ("health_aggregator", HealthAggregatorSettings),
    "console": ("console", ConsoleSettings),
}
INFRA = ("kafka", "postgres", "redis")
EXPECTED_COMMON = {
    "OPSMESH_KAFKA_BOOTSTRAP": "kafka:9092",
    "OPSMESH_PG_DSN": "postgresql://opsmesh:opsmesh@postgres:5432/opsmesh",
    "OPSMESH_REDIS_URL": "redis://redis:6379/0",
    "OPSMESH_HTTP_HOST": "0.0.0.0",
}


# -- helpers: compose's loose syntax, normalised -------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in compose["services"], f"compose has no service {name!r}"
    spec: dict[str, Any] = compose["services"][name]
    return spec


_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: object) -> str:
    """What compose substitutes when the variable is unset: its default, else empty."""
    return _INTERPOLATION.sub(lambda m: m.group("default") or "", str(value))


def environment(spec: dict[str, Any]) -> dict[str, str]:
    raw = spec.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {k: interpolate(v) for k, v in pairs}
    return {str(k): interpolate("" if v is None else v) for k, v in raw.items()}


def command(spec: dict[str, Any]) -> list[str]:
    raw = spec.get("command")
    if raw is None:
        return []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def container_ports(spec: dict[str, Any]) -> set[int]:
    out = set()
    for entry in spec.get("ports", []):
        if isinstance(entry, dict):
            out.add(int(entry["target"]))
        else:
            out.add(int(str(entry).split(":")[-1].split("/")[0]))
    return out


def healthcheck_command(spec: dict[str, Any]) -> str:
    check = spec.get("healthcheck") or {}
    assert not check.get("disable"), "healthcheck is disabled"
    test = check.get("test")
    assert test, "no healthcheck test"
    if isinstance(test, str):
        return test
    assert test[0] in ("CMD", "CMD-SHELL"), (
        f"healthcheck test must start with CMD/CMD-SHELL: {test}"
    )
    return " ".join(str(part) for part in test[1:])


def depends_on(spec: dict[str, Any]) -> dict[str, str]:
    """Dependency -> condition (the short list form means service_started)."""
    raw = spec.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (dep or {}).get("condition", "service_started") for name, dep in raw.items()}


def bind_mounts(spec: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path resolved against compose/, container path) for every bind mount."""
    out = []
    for volume in spec.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
        else:
            source, target = str(volume).split(":")[:2]
            if not source.startswith((".", "/", "~")):
                continue  # a named volume
        out.append(((COMPOSE_DIR / source).resolve(), target))
    return out


def aliases(settings_type: type[BaseSettings]) -> set[str]:
    names = {f.alias for f in CommonSettings.model_fields.values() if f.alias}
    names |= {f.alias for f in settings_type.model_fields.values() if f.alias}
    return names


def http_port(settings_type: type[BaseSettings]) -> tuple[str, int]:
    field = settings_type.model_fields["http_port"]
    assert field.alias
    return field.alias, int(field.default)


def dockerfile_lines(path: Path) -> list[str]:
    """Instructions with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


# -- the services -------------------------------------------------------------------------


def test_the_table_here_matches_the_mesh_supervisor() -> None:
    """`opsmesh up` and compose must agree on which services exist and how they start."""
    mesh = (*MESH_SERVICES, CONSOLE)
    assert {s.name: s.module for s in mesh} == {n: m for n, (m, _) in SERVICES.items()}
    for info in mesh:
        assert (info.port_variable, info.default_port) == http_port(SERVICES[info.name][1])


@pytest.mark.parametrize("name", SERVICES)
def test_service_is_built_from_the_repo_dockerfile(compose: dict[str, Any], name: str) -> None:
    build = service(compose, name).get("build")
    assert isinstance(build, dict), f"{name}: build must name the context and the Dockerfile"
    context = (COMPOSE_DIR / build["context"]).resolve()
    assert context == ROOT, f"{name}: build context must be the repo root, got {context}"
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()
    assert build.get("target") == "runtime", f"{name}: services run the production image"


@pytest.mark.parametrize(("name", "module"), [(n, m) for n, (m, _) in SERVICES.items()])
def test_service_runs_its_module(compose: dict[str, Any], name: str, module: str) -> None:
    argv = command(service(compose, name))
    if argv[:2] == ["bash", "/opt/opsmesh/with-token.sh"]:
        # tokens/with-token.sh sets one of the service's own variables to the stack token.
        variable = argv[2]
        assert variable in aliases(SERVICES[name][1]), f"{name} reads no {variable}"
        spec = service(compose, name)
        mounted = {target.split(":")[0]: source for source, target in bind_mounts(spec)}
        assert mounted.get("/opt/opsmesh/with-token.sh") == WITH_TOKEN
        assert "secrets:/run/opsmesh:ro" in spec["volumes"]
        argv = argv[3:]
    assert argv == ["python", "-m", module]


@pytest.mark.parametrize(("name", "settings_type"), [(n, s) for n, (_, s) in SERVICES.items()])
def test_service_listens_publishes_and_probes_its_port(
    compose: dict[str, Any], name: str, settings_type: type[BaseSettings]
) -> None:
    spec = service(compose, name)
    variable, default_port = http_port(settings_type)
    env = environment(spec)
    assert env.get(variable) == str(default_port), (
        f"{name}: {variable} must equal the settings default {default_port}"
    )
    assert default_port in container_ports(spec), f"{name}: port {default_port} is not published"
    probe = healthcheck_command(spec)
    assert f"http://127.0.0.1:{default_port}/health/ready" in probe, probe
    assert "urllib" in probe, "slim images have no curl; probe with python's urllib"
    assert "curl" not in probe, "slim images have no curl; probe with python's urllib"


@pytest.mark.parametrize(("name", "settings_type"), [(n, s) for n, (_, s) in SERVICES.items()])
def test_every_variable_a_service_gets_is_one_it_reads(
    compose: dict[str, Any], name: str, settings_type: type[BaseSettings]
) -> None:
    env = environment(service(compose, name))
    unknown = sorted(set(env) - aliases(settings_type))
    assert not unknown, f"{name}: {settings_type.__name__} reads none of {unknown} (typo?)"


@pytest.mark.parametrize(("name", "settings_type"), [(n, s) for n, (_, s) in SERVICES.items()])
def test_service_settings_validate_with_the_compose_values(
    compose: dict[str, Any], name: str, settings_type: type[BaseSettings]
) -> None:
    env = environment(service(compose, name))
    for variable, expected in EXPECTED_COMMON.items():
        assert env.get(variable) == expected, f"{name}: {variable}"
    assert "OPSMESH_LOG_LEVEL" in env
    # model_validate reads only these values (not the test machine's environment), with
    # the same validators a service runs at start.
    settings = settings_type.model_validate(env)
    assert getattr(settings, "http_port", None) == http_port(settings_type)[1]


def test_service_endpoints_name_compose_services(compose: dict[str, Any]) -> None:
    """A URL host that is not a compose service (e.g. 127.0.0.1) is the container itself."""
    services = set(compose["services"])
    for name in SERVICES:
        env = environment(service(compose, name))
        hosts: set[str | None] = {env["OPSMESH_KAFKA_BOOTSTRAP"].rsplit(":", 1)[0]}
        hosts |= {urlsplit(env[v]).hostname for v in ("OPSMESH_PG_DSN", "OPSMESH_REDIS_URL")}
        if "NOTIFIER_DEFAULT_WEBHOOK_URL" in env:
            hosts.add(urlsplit(env["NOTIFIER_DEFAULT_WEBHOOK_URL"]).hostname)
        assert hosts <= services, f"{name}: {hosts - services} are not compose services"


@pytest.mark.parametrize("name", SERVICES)
def test_service_waits_for_healthy_infrastructure(compose: dict[str, Any], name: str) -> None:
    deps = depends_on(service(compose, name))
    for part in INFRA:
        assert deps.get(part) == "service_healthy", f"{name} must wait for {part} to be healthy"


def test_every_healthy_dependency_has_a_healthcheck(compose: dict[str, Any]) -> None:
    """compose refuses to start when a service_healthy dependency defines no healthcheck."""
    for name, spec in compose["services"].items():
        for dep, condition in depends_on(spec).items():
            assert dep in compose["services"], f"{name} depends on unknown service {dep}"
            if condition == "service_healthy":
                healthcheck_command(compose["services"][dep])


# -- infrastructure ------------------------------------------------------------------------


@pytest.mark.parametrize("name", INFRA)
def test_infrastructure_has_a_healthcheck(compose: dict[str, Any], name: str) -> None:
    assert healthcheck_command(service(compose, name)).strip()


def test_kafka_is_single_node_kraft_advertising_what_services_use(compose: dict[str, Any]) -> None:
    spec = service(compose, "kafka")
    assert spec["build"]["context"] == "kafka"
    env = environment(spec)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in env["KAFKA_LISTENERS"]
    advertised = {
        entry.split("://", 1)[1] for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    }
    assert EXPECTED_COMMON["OPSMESH_KAFKA_BOOTSTRAP"] in advertised
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    ):
        assert env.get(key) == "1", f"{key} must be 1 on a single node"
    assert env["CLUSTER_ID"], "the entrypoint formats the storage with CLUSTER_ID"
    assert "/dev/tcp/127.0.0.1/9092" in healthcheck_command(spec)
    # The image runs the broker version the tests run (from the same Maven pom).
    pom = (ROOT / "dev/src/opsmesh_dev/infra/resources/kafka-pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version
    assert spec["image"] == f"opsmesh-kafka:{version.group(1)}"


def test_postgres_credentials_match_the_services_dsn(compose: dict[str, Any]) -> None:
    spec = service(compose, "postgres")
    env = environment(spec)
    dsn = urlsplit(EXPECTED_COMMON["OPSMESH_PG_DSN"])
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (
        dsn.username,
        dsn.password,
        dsn.path.lstrip("/"),
    )
    assert "pg_isready" in healthcheck_command(spec)
    build = spec["build"]
    dockerfile = (COMPOSE_DIR / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()
    lines = dockerfile_lines(dockerfile)
    assert "FROM ${BASE_IMAGE}" in lines
    assert any(
        "apt-get install" in line and {"postgresql-15", "postgresql-15-hypopg"} <= set(line.split())
        for line in lines
    )


def test_redis_healthcheck_pings(compose: dict[str, Any]) -> None:
    spec = service(compose, "redis")
    assert spec["build"]["context"] == "redis"
    assert "redis-cli ping" in healthcheck_command(spec)


# -- the image -----------------------------------------------------------------------------


def test_dockerfile_installs_the_locked_workspace() -> None:
    lines = dockerfile_lines(DOCKERFILE)
    args = {m.group(1): m.group(2) for line in lines if (m := re.match(r"ARG (\w+)=(\S+)", line))}
    # Each stage's base, by stage name; the last stage's chain of stages ends in an image.
    bases = {
        parts[-1] if len(parts) == 4 else "": re.sub(
            r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[1]
        )
        for line in lines
        if line.startswith("FROM ") and (parts := line.split())
    }
    base = list(bases.values())[-1]
    while base in bases:
        base = bases[base]
    assert base == BASE_IMAGE, f"runtime base image is {base}"

    syncs = [line for line in lines if "uv sync" in line]
    assert syncs, "the Dockerfile never runs uv sync"
    for line in syncs:
        assert "--frozen" in line.split(), f"uv sync must install exactly uv.lock: {line}"
        assert "--no-dev" in line.split(), f"no dev tools in the image: {line}"
    assert any("--no-install-workspace" not in line for line in syncs), "workspace never installed"
    assert any(line.startswith("COPY") and "uv.lock" in line.split() for line in lines)
    assert (ROOT / "uv.lock").is_file()


def test_dockerfile_copies_every_workspace_member_and_only_existing_paths() -> None:
    """A new service under services/ must reach the image; a renamed path must fail here."""
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    members = sorted(
        {
            p.relative_to(ROOT).as_posix()
            for pattern in workspace["members"]
            for p in ROOT.glob(pattern)
            if (p / "pyproject.toml").is_file()
        }
    )
    # shared, the services, the development package (dev/) and the producer SDK.
    assert len(members) == 3 + len(SERVICES), members
    copies = [line.split()[1:] for line in dockerfile_lines(DOCKERFILE) if line.startswith("COPY ")]
    sources = {
        src
        for parts in copies
        if not any(p.startswith("--from") for p in parts)
        for src in parts[:-1]
    }
    for member in members:
        assert f"{member}/pyproject.toml" in sources, f"{member}/pyproject.toml is not copied"
        # Every member is built into an image (the SDK too: the notifier's CDN adapters),
        # and its build backend needs the readme its pyproject names.
        assert f"{member}/src" in sources, f"{member}/src is not copied"
        project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]
        if isinstance(project.get("readme"), str):
            readme = f"{member}/{project['readme']}"
            assert readme in sources, f"{readme} is not copied (the wheel build needs it)"
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: no such path in the build context"


def dockerfile_stages(path: Path) -> dict[str, list[str]]:
    """Each stage's instructions by its name (``FROM x AS name``), in order."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in dockerfile_lines(path):
        if line.startswith("FROM "):
            parts = line.split()
            current = stages.setdefault(parts[-1] if parts[-2].upper() == "AS" else "", [])
        current.append(line)
    return stages


def test_the_runtime_image_leaves_the_development_package_out() -> None:
    """The default (last) stage is the production image; its virtualenv comes from a stage
    that never copies dev/src nor installs opsmesh-dev."""
    stages = dockerfile_stages(DOCKERFILE)
    assert list(stages)[-1] == "runtime", "the last stage (docker build's default) is runtime"

    def venv_source(stage: str) -> str:
        (source,) = [
            line.split()[1].removeprefix("--from=")
            for line in stages[stage]
            if line.startswith("COPY --from=") and line.split()[-1] == "/opt/venv"
        ]
        return source

    runtime_build = stages[venv_source("runtime")]
    assert not any(line.startswith("COPY") and "dev/src" in line.split() for line in runtime_build)
    assert not any("opsmesh-dev" in line for line in runtime_build if "uv sync" in line)
    devtools_build = stages[venv_source("devtools")]
    assert any("--package opsmesh-dev" in line for line in devtools_build if "uv sync" in line)


@pytest.mark.parametrize("name", ["webhook-sink", "demo-traffic"])
def test_dev_sinks_run_the_devtools_image(compose: dict[str, Any], name: str) -> None:
    build = service(compose, name).get("build")
    assert isinstance(build, dict)
    assert build.get("target") == "devtools", f"{name} needs the development package"
    assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_image_carries_the_alertmanager_template_renderer() -> None:
    """The notifier of an Alertmanager configuration needs opsmesh-amtemplate (Go)."""
    text = "\n".join(dockerfile_lines(DOCKERFILE))
    # Go 1.26 is not in Debian bookworm: images/build.sh stages the binary `make deps` built.
    assert "COPY compose/.build/opsmesh-amtemplate /usr/local/bin/opsmesh-amtemplate" in text
    assert "NOTIFIER_AMTEMPLATE_BIN=/usr/local/bin/opsmesh-amtemplate" in text
    build = (COMPOSE_DIR / "images" / "build.sh").read_text()
    assert "python -m notifier.amtemplate.build" in build
    assert "compose/.build/opsmesh-amtemplate" in build


def test_dockerignore_keeps_local_state_out_and_the_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (".git", ".venv", ".opsmesh"):
        assert any(p.strip("/*") == needed for p in patterns), (
            f".dockerignore must exclude {needed}"
        )
    for kept in ("uv.lock", "pyproject.toml", "shared", "services", "dev", "src"):
        assert kept not in [p.strip("/") for p in patterns], f".dockerignore excludes {kept}"


# -- mounts, rules and the dev sinks ---------------------------------------------------------


def test_every_file_mounted_from_the_repo_exists(compose: dict[str, Any]) -> None:
    mounts = [
        (name, source)
        for name, spec in compose["services"].items()
        for source, _ in bind_mounts(spec)
    ]
    assert mounts, "expected bind mounts (rules, Prometheus and Grafana config)"
    for name, source in mounts:
        if (name, source) in HOST_MOUNTS:
            continue
        assert source.exists(), f"{name} mounts {source}, which does not exist"
        assert source.is_relative_to(ROOT), f"{name} mounts {source} from outside the repo"


def test_alert_engine_rules_files_are_mounted_and_parse(compose: dict[str, Any]) -> None:
    spec = service(compose, "alert-engine")
    mounted = {target.split(":")[0]: source for source, target in bind_mounts(spec)}
    files = [
        p.strip() for p in environment(spec)["ALERT_ENGINE_RULES_FILES"].split(",") if p.strip()
    ]
    assert files
    for path in files:
        assert path in mounted, f"ALERT_ENGINE_RULES_FILES names {path}, which is not mounted"
        rules = parse_rules(mounted[path].read_text(), source=str(mounted[path]))
        assert rules, f"{mounted[path]} holds no rules"


def _receivers(compose: dict[str, Any]) -> dict[str, Any]:
    spec = service(compose, "notifier")
    path = environment(spec)["NOTIFIER_RECEIVERS_FILE"]
    mounted = {target.split(":")[0]: source for source, target in bind_mounts(spec)}
    assert path in mounted, f"NOTIFIER_RECEIVERS_FILE names {path}, which is not mounted"
    return {r["name"]: r for r in yaml.safe_load(mounted[path].read_text())["receivers"]}


def test_notifier_reaches_the_webhook_sink(compose: dict[str, Any]) -> None:
    spec = service(compose, "notifier")
    env = environment(spec)
    receivers = _receivers(compose)
    NotifierSettings.model_validate(env)
    # alert-engine routes everything to its one receiver (no config file in compose).
    engine = AlertEngineSettings.model_validate(environment(service(compose, "alert-engine")))
    assert engine.config_file is None
    (hook,) = receivers[engine.receiver]["webhook_configs"]
    url = urlsplit(hook["url"])
    sink = service(compose, url.hostname or "")
    assert url.port in container_ports(sink)
    sink_command = " ".join(command(sink))
    assert "opsmesh_dev.tools.sink" in sink_command
    assert f"port={url.port}" in sink_command or f"--port {url.port}" in sink_command
    # 127.0.0.1 inside a container is unreachable from the notifier's container.
    assert "0.0.0.0" in sink_command, "the sink must listen on all interfaces"
    assert "/data/notifications.jsonl" in sink_command
    # Docker's default address pools (172.17-31.0.0/16, 192.168.0.0/16 in /20s): the compose
    # network comes from one of them and the notifier refuses private targets not allow-listed.
    allowed = [
        ipaddress.IPv4Network(n.strip()) for n in env["NOTIFIER_ALLOWED_NETWORKS"].split(",")
    ]
    for pool in ("172.17.0.0/16", "172.31.0.0/16", "192.168.0.0/20"):
        subnet = ipaddress.IPv4Network(pool)
        assert any(subnet.subnet_of(n) for n in allowed), f"{pool} is not allow-listed"
    assert depends_on(spec).get(url.hostname or "") == "service_healthy"


def test_the_demo_receiver_emails_the_mail_catcher(compose: dict[str, Any]) -> None:
    engine = AlertEngineSettings.model_validate(environment(service(compose, "alert-engine")))
    (mail,) = _receivers(compose)[engine.receiver]["email_configs"]
    host, _, port = mail["smarthost"].rpartition(":")
    catcher = service(compose, host)
    assert int(port) in container_ports(catcher)
    argv = command(catcher)
    assert argv[:3] == ["python", "-m", "opsmesh_dev.tools.mailcatcher"]
    assert argv[argv.index("--smtp-port") + 1] == port
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert mail["require_tls"] is False, "the mail catcher speaks plain SMTP"
    assert depends_on(service(compose, "notifier")).get(host) == "service_healthy"


def test_demo_traffic_publishes_to_the_stack_kafka(compose: dict[str, Any]) -> None:
    argv = command(service(compose, "demo-traffic"))
    assert argv[:2] == ["opsmesh", "demo-traffic"]
    assert argv[argv.index("--bootstrap") + 1] == EXPECTED_COMMON["OPSMESH_KAFKA_BOOTSTRAP"]
    assert depends_on(service(compose, "demo-traffic")).get("kafka") == "service_healthy"


def test_mail_catcher_serves_smtp_and_a_web_page(compose: dict[str, Any]) -> None:
    spec = service(compose, "mailcatcher")
    argv = command(spec)
    http = int(argv[argv.index("--http-port") + 1])
    assert {int(argv[argv.index("--smtp-port") + 1]), http} <= container_ports(spec)
    assert f"http://127.0.0.1:{http}/api/messages" in healthcheck_command(spec)
    assert spec["build"]["target"] == "devtools"


# -- Prometheus and Grafana ---------------------------------------------------------------------


def _mounted_file(compose: dict[str, Any], name: str, container_path: str) -> Path:
    for source, target in bind_mounts(service(compose, name)):
        if source.is_file() and target.split(":")[0] == container_path:
            return source
        if source.is_dir() and container_path.startswith(target.split(":")[0] + "/"):
            return source / container_path[len(target.split(":")[0]) + 1 :]
    raise AssertionError(f"{name}: nothing from the repo is mounted at {container_path}")


def test_prometheus_scrapes_every_service_and_alerts_to_the_engine(compose: dict[str, Any]) -> None:
    spec = service(compose, "prometheus")
    flags = [a for a in command(spec) if a.startswith("--config.file=")]
    config_path = flags[0].split("=", 1)[1] if flags else "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load(_mounted_file(compose, "prometheus", config_path).read_text())

    scraped: set[str] = set()
    for job in config["scrape_configs"]:
        if job.get("metrics_path", "/metrics") != "/metrics":
            continue
        for static in job.get("static_configs", []):
            scraped.update(static.get("targets", []))
    for name, (_, settings_type) in SERVICES.items():
        assert f"{name}:{http_port(settings_type)[1]}" in scraped, (
            f"Prometheus does not scrape {name}"
        )

    apps = [j for j in config["scrape_configs"] if j.get("metrics_path") == "/metrics/apps"]
    assert [t for j in apps for s in j["static_configs"] for t in s["targets"]] == [
        f"metrics-ingest:{http_port(MetricsIngestSettings)[1]}"
    ], "Prometheus must scrape the applications' metrics from metrics-ingest"
    assert all(j.get("honor_labels") for j in apps), "keep the applications' own labels"

    engine = f"alert-engine:{http_port(AlertEngineSettings)[1]}"
    managers = config["alerting"]["alertmanagers"]
    assert any(
        m.get("api_version") == "v2"
        and any(engine in s.get("targets", []) for s in m.get("static_configs", []))
        for m in managers
    ), f"Prometheus must alert to {engine} with api_version v2"


def test_grafana_provisions_the_stack_prometheus(compose: dict[str, Any]) -> None:
    provisioning = _mounted_file(compose, "grafana", "/etc/grafana/provisioning/datasources")
    datasources = [
        ds
        for path in sorted(provisioning.glob("*.y*ml"))
        for ds in (yaml.safe_load(path.read_text()) or {}).get("datasources", [])
    ]
    prometheus = [ds for ds in datasources if ds.get("type") == "prometheus"]
    assert prometheus, "no Prometheus datasource is provisioned"
    url = urlsplit(prometheus[0]["url"])
    assert url.hostname == "prometheus"
    assert url.port in container_ports(service(compose, "prometheus"))


# -- no registry: every image is built from the debootstrap'd base -----------------------------


def test_every_image_but_grafana_is_built_here_from_the_debian_base(
    compose: dict[str, Any],
) -> None:
    """No registry is reachable on the project's machines: each Dockerfile starts from the
    base that compose/images/base.sh imports, or from one of its own stages, and uses nothing
    docker-compose 1.29's classic builder lacks (a `# syntax=` line, RUN --mount)."""
    for name, spec in compose["services"].items():
        if name == "grafana":
            assert spec.get("profiles") == ["grafana"], "the registry image stays opt-in"
            continue
        build = spec.get("build")
        assert isinstance(build, dict), f"{name} is not built here"
        context = COMPOSE_DIR / build["context"]
        dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
        raw = dockerfile.read_text()
        assert "# syntax=" not in raw, f"{dockerfile}: a syntax image cannot be fetched"
        lines = dockerfile_lines(dockerfile)
        assert f"ARG BASE_IMAGE={BASE_IMAGE}" in lines, dockerfile
        stages = set()
        for line in lines:
            assert "--mount=" not in line, f"{dockerfile}: RUN --mount needs BuildKit"
            if line.startswith("FROM "):
                parts = line.split()
                assert parts[1] in {"${BASE_IMAGE}", *stages}, f"{dockerfile}: {line}"
                if len(parts) == 4:
                    stages.add(parts[3])
    assert (
        f'image="${{OPSMESH_BASE_IMAGE:-{BASE_IMAGE}}}"'
        in (COMPOSE_DIR / "images" / "base.sh").read_text()
    )


# -- the stack's API token ------------------------------------------------------------------


def test_prometheus_and_amtool_writes_carry_the_stack_token(compose: dict[str, Any]) -> None:
    init = (COMPOSE_DIR / "tokens" / "init.sh").read_text()
    assert 'printf \'%s\\n\' "$token" >"$dir/api-token"' in init
    assert 'printf \'%s:write\\n\' "$token" >"$dir/api-tokens"' in init
    tokens = service(compose, "tokens")
    assert ("secrets", "/run/opsmesh") in {tuple(v.split(":")[:2]) for v in tokens["volumes"]}
    for name, variable in (
        ("alert-engine", "ALERT_ENGINE_API_TOKENS_FILE"),
        ("notifier", "NOTIFIER_API_TOKENS_FILE"),
    ):
        spec = service(compose, name)
        assert environment(spec)[variable] == "/run/opsmesh/api-tokens"
        assert "secrets:/run/opsmesh:ro" in spec["volumes"]
        assert depends_on(spec)["tokens"] == "service_completed_successfully"
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    for manager in config["alerting"]["alertmanagers"]:
        assert manager["authorization"] == {
            "type": "Bearer",
            "credentials_file": "/run/opsmesh/api-token",
        }
    assert "secrets:/run/opsmesh:ro" in service(compose, "prometheus")["volumes"]


def test_prometheus_loads_the_rule_files_and_promtool_accepts_them(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    rules_dir = _mounted_file(compose, "prometheus", "/etc/prometheus/rules/x.yml").parent
    files = sorted(rules_dir.glob("*.yml"))
    assert files, "no Prometheus rule files"
    # Debian's promtool (make deps installs the prometheus package for the tests).
    result = subprocess.run(
        ["promtool", "check", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                runbook = rule.get("annotations", {}).get("runbook_url")
                if runbook:
                    # Absolute under the stack's console, which serves runbooks/.
                    page = runbook.removeprefix(f"{DEFAULT_RUNBOOK_BASE_URL}/")
                    assert page != runbook, f"{rule['alert']}: {runbook} is not the console's"
                    assert (RUNBOOKS / page).is_file(), f"{rule['alert']}: {runbook} is missing"


# -- the exporters ----------------------------------------------------------------------------

EXPORTER_SERVICES = ("postgres-exporter", "redis-exporter", "node-exporter", "blackbox-exporter")


def _listens_on(spec: dict[str, Any]) -> int:
    (listen,) = [a for a in command(spec) if "web.listen-address=" in a]
    return int(listen.rsplit(":", 1)[1])


def test_prometheus_scrapes_each_exporter_and_probes_every_service(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in ("postgres-exporter", "redis-exporter", "node-exporter"):
        spec = service(compose, name)
        port = _listens_on(spec)
        job = jobs[name.removesuffix("-exporter")]
        assert [t for s in job["static_configs"] for t in s["targets"]] == [f"{name}:{port}"]
        assert f"http://127.0.0.1:{port}/" in healthcheck_command(spec)
    blackbox = jobs["blackbox"]
    port = _listens_on(service(compose, "blackbox-exporter"))
    assert blackbox["metrics_path"] == "/probe"
    assert blackbox["relabel_configs"][-1] == {
        "target_label": "__address__",
        "replacement": f"blackbox-exporter:{port}",
    }
    probed = {t for s in blackbox["static_configs"] for t in s["targets"]}
    assert probed == {
        f"http://{name}:{http_port(settings_type)[1]}/health/ready"
        for name, (_, settings_type) in SERVICES.items()
    }
    # What remote write sends to metrics-ingest is the exporters' families.
    (write,) = config["remote_write"]
    assert write["write_relabel_configs"][0]["regex"] == "(node|pg|redis|probe)_.+"


@pytest.mark.parametrize("name", EXPORTER_SERVICES)
def test_exporters_share_one_image_built_from_debian_packages(
    compose: dict[str, Any], name: str
) -> None:
    spec = service(compose, name)
    assert spec["build"] == {"context": "exporters"}
    assert spec["image"] == "opsmesh-exporters:dev"
    lines = dockerfile_lines(COMPOSE_DIR / "exporters" / "Dockerfile")
    binary = command(spec)[0]
    assert any("apt-get install" in line and binary in line.split() for line in lines), binary
    assert healthcheck_command(spec).startswith(
        f"wget -q -O /dev/null http://127.0.0.1:{_listens_on(spec)}/"
    )
    # Only Prometheus reads them; a host's own exporters often hold these ports.
    assert "ports" not in spec


def test_the_database_exporter_reads_the_stack_database(compose: dict[str, Any]) -> None:
    spec = service(compose, "postgres-exporter")
    dsn = urlsplit(environment(spec)["DATA_SOURCE_NAME"])
    expected = urlsplit(EXPECTED_COMMON["OPSMESH_PG_DSN"])
    assert (dsn.hostname, dsn.port, dsn.path) == (expected.hostname, expected.port, expected.path)
    assert depends_on(spec)["postgres"] == "service_healthy"
    redis = service(compose, "redis-exporter")
    assert "-redis.addr=redis://redis:6379" in command(redis)
    assert depends_on(redis)["redis"] == "service_healthy"
