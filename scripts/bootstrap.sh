#!/usr/bin/env bash
# Installs what opsmesh needs on a fresh Debian machine (this project's dev/CI kind):
# Debian packages for PostgreSQL 15 + hypopg, Redis, Maven and Java, Prometheus with the
# PostgreSQL, Redis, node and blackbox exporters, Alertmanager, Chromium, Docker (docker.io,
# docker-compose) and debootstrap; uv; the locked Python workspace; and the Kafka broker
# jars from Maven Central. Idempotent: it only installs
# what is missing. A part given by OPSMESH_KAFKA_BOOTSTRAP / OPSMESH_PG_DSN /
# OPSMESH_REDIS_URL is not installed locally.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*"; }

packages=()
if [ -z "${OPSMESH_PG_DSN:-}" ]; then
  [ -x /usr/lib/postgresql/15/bin/initdb ] || packages+=(postgresql-15)
  [ -f /usr/share/postgresql/15/extension/hypopg.control ] || packages+=(postgresql-15-hypopg)
fi
if [ -z "${OPSMESH_REDIS_URL:-}" ]; then
  command -v redis-server >/dev/null || packages+=(redis-server)
fi
# The alert-engine's compatibility tests drive it with the real Prometheus and amtool,
# and its benchmark runs Alertmanager beside it; the notifier's template and webhook
# tests compare with what Debian's Alertmanager binary (by its path) sends.
command -v prometheus >/dev/null || packages+=(prometheus)
if ! command -v amtool >/dev/null || [ ! -x /usr/bin/prometheus-alertmanager ]; then
  packages+=(prometheus-alertmanager)
fi
# `opsmesh up` runs Prometheus and the exporters the compose stack runs (compose/exporters/),
# from the same Debian packages; the monitoring integration test starts them too.
for exporter in postgres redis node blackbox; do
  command -v "prometheus-$exporter-exporter" >/dev/null || packages+=("prometheus-$exporter-exporter")
done
# The console's browser tests drive Debian's Chromium with Playwright (no browser download).
[ -x /usr/bin/chromium ] || packages+=(chromium)
# `make compose-test` builds the compose stack's images from a Debian root made by
# debootstrap (no container registry is needed) and runs them with Debian's Docker engine
# and docker-compose, starting its own daemon when none is running.
[ -x /usr/sbin/dockerd ] || packages+=(docker.io)
command -v docker-compose >/dev/null || packages+=(docker-compose)
command -v debootstrap >/dev/null || packages+=(debootstrap)
if [ -z "${OPSMESH_KAFKA_BOOTSTRAP:-}" ]; then
  command -v mvn >/dev/null || packages+=(maven)
  command -v java >/dev/null || packages+=(openjdk-17-jre-headless)
fi

if [ "${#packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${packages[*]}"
    say "install them as root (apt-get install ${packages[*]}), or point the tests at existing"
    say "infrastructure with OPSMESH_KAFKA_BOOTSTRAP, OPSMESH_PG_DSN and OPSMESH_REDIS_URL"
    exit 1
  fi
  say "installing Debian packages: ${packages[*]}"
  # The project runs its own throwaway servers: keep the packages from creating and
  # starting system-wide ones during installation.
  mkdir -p /etc/postgresql-common
  if [ ! -f /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
    echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  fi
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  trap '[ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  if ! apt-get update -qq; then
    say "apt-get update failed: Debian's package servers are not reachable."
    say "point the tests at existing infrastructure with OPSMESH_KAFKA_BOOTSTRAP, OPSMESH_PG_DSN, OPSMESH_REDIS_URL"
    exit 1
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; then
    say "apt-get install ${packages[*]} failed (see above)."
    say "point the tests at existing infrastructure with OPSMESH_KAFKA_BOOTSTRAP, OPSMESH_PG_DSN, OPSMESH_REDIS_URL"
    exit 1
  fi
fi

if ! command -v uv >/dev/null; then
  say "installing uv"
  python3 -m pip install -q --disable-pip-version-check 'uv>=0.5,<1'
fi

say "syncing the Python workspace from uv.lock"
uv sync --frozen --quiet

# The notifier renders Alertmanager-format templates with Alertmanager's own Go package:
# built once from services/notifier/src/notifier/amtemplate/renderer (Go 1.26, modules
# from the Go module proxy), cached in ~/.cache/opsmesh/bin.
say "building the Alertmanager template renderer (cached)"
if ! uv run --frozen --quiet python -m notifier.amtemplate.build >/dev/null; then
  say "the renderer did not build: Alertmanager-format receivers will not start; opsmesh"
  say "receivers files (Jinja2 templates) work without it. Install Go 1.26 and run make deps again."
  exit 1
fi

if [ -z "${OPSMESH_KAFKA_BOOTSTRAP:-}" ]; then
  say "resolving the Kafka broker jars (Maven Central, cached)"
  uv run --frozen --quiet python -c "from opsmesh_dev.infra.kafka import ensure_jars; print('[bootstrap] kafka jars:', ensure_jars())"
fi
