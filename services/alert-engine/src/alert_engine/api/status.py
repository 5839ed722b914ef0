"""What ``GET /api/v2/status`` says about the running engine: the Alertmanager release
whose API it stands in for, opsmesh's own version, and when the process started.

amtool compares the major.minor of ``versionInfo.version`` with its own and warns when they
differ, so ``version`` names an Alertmanager release (``ALERT_ENGINE_AM_COMPAT_VERSION``),
never opsmesh's version; opsmesh's version goes in ``revision``. Only releases whose API
the engine is tested against may be claimed (``COMPAT_RANGE``): Debian's amtool 0.25 runs
against it in the integration tests, and the API v2 it serves is Alertmanager 0.34's
specification (``tests/fixtures/openapi/alertmanager-v2.yaml``), which only added
optional parameters and error answers to 0.25's.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from importlib.metadata import version as distribution_version

from alert_engine.core.validation import rfc3339

DISTRIBUTION = "opsmesh-alert-engine"
OPSMESH_VERSION = distribution_version(DISTRIBUTION)
DEFAULT_COMPAT_VERSION = "0.25.0"
# (major, minor) of the oldest and newest Alertmanager release the API is tested against.
COMPAT_RANGE = ((0, 25), (0, 34))

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


class UnsupportedCompatVersion(ValueError):
    """A claimed Alertmanager version that is not X.Y.Z or outside ``COMPAT_RANGE``."""


def compat_version(text: str) -> str:
    """``text`` if it is an Alertmanager release the engine may claim to be."""
    match = _SEMVER.match(text)
    if match is None:
        raise UnsupportedCompatVersion(
            f"{text!r} is not an Alertmanager release as X.Y.Z (for example 0.25.0)"
        )
    major_minor = (int(match[1]), int(match[2]))
    low, high = COMPAT_RANGE
    if not low <= major_minor <= high:
        raise UnsupportedCompatVersion(
            f"{text} is outside the Alertmanager API releases the alert-engine is tested "
            f"against ({low[0]}.{low[1]} to {high[0]}.{high[1]})"
        )
    return text


@dataclass(frozen=True)
class BuildInfo:
    """Alertmanager's ``versionInfo``. opsmesh stamps no build user or date into its
    packages, so those are empty (as in an Alertmanager built without them); the
    ``goVersion`` field carries the runtime that actually runs, Python's."""

    version: str
    revision: str
    branch: str
    build_user: str
    build_date: str
    runtime: str

    def as_json(self) -> dict[str, str]:
        return {
            "version": self.version,
            "revision": self.revision,
            "branch": self.branch,
            "buildUser": self.build_user,
            "buildDate": self.build_date,
            "goVersion": self.runtime,
        }


def build_info(compat: str) -> BuildInfo:
    return BuildInfo(
        version=compat_version(compat),
        revision=f"{DISTRIBUTION} {OPSMESH_VERSION}",
        branch="opsmesh",
        build_user="",
        build_date="",
        runtime=f"python{platform.python_version()}",
    )


@dataclass(frozen=True)
class ServerStatus:
    """Fixed for the life of the process: ``started_at`` is read once from the injected
    clock when the service is built, so ``uptime`` is the start instant, as Alertmanager's."""

    build: BuildInfo
    started_at: float


def status_json(status: ServerStatus, original_config: str) -> dict[str, object]:
    return {
        "cluster": {"name": "opsmesh-alert-engine", "status": "disabled", "peers": []},
        "versionInfo": status.build.as_json(),
        "config": {"original": original_config},
        "uptime": rfc3339(status.started_at),
    }
