#!/usr/bin/env bash
# Builds every image of the compose stack, with no container registry: the Debian base
# (base.sh), then what Debian bookworm cannot provide, staged from the host's `make deps`
# (the Alertmanager template renderer, which needs Go 1.26, and the Kafka broker jars from
# Maven Central), then `docker-compose build`. Layers are cached: a second run rebuilds only
# what changed. Needs a running Docker engine, root (debootstrap) and the workspace (uv).
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf '[compose images] %s\n' "$*"; }

started=$SECONDS
compose/images/base.sh
say "... $((SECONDS - started)) s"

say "staging the Alertmanager template renderer and the Kafka jars"
mkdir -p compose/.build
renderer="$(uv run --frozen --quiet python -m notifier.amtemplate.build)"
cmp -s "$renderer" compose/.build/opsmesh-amtemplate || cp "$renderer" compose/.build/opsmesh-amtemplate
jars="$(uv run --frozen --quiet python -c 'from opsmesh_dev.infra.kafka import ensure_jars; print(ensure_jars())')"
mkdir -p compose/kafka/libs
# Exactly the resolved jars (a version bump must not leave the old ones on the classpath).
for jar in compose/kafka/libs/*.jar; do
  [ -e "$jar" ] && [ ! -e "$jars/$(basename "$jar")" ] && rm -f "$jar"
done
cp -u "$jars"/*.jar compose/kafka/libs/

# One service per image (the others share these tags, as the four exporters share
# postgres-exporter's), so nothing is built twice: the infrastructure images and opsmesh:dev
# side by side (downloads and dpkg of one overlap the compilation of another), then
# opsmesh-devtools:dev, whose first stages come from opsmesh:dev's cache. `docker-compose up`
# builds any image still missing.
started=$SECONDS
say "docker-compose build --parallel kafka postgres redis prometheus postgres-exporter tokens"
docker-compose -f compose/docker-compose.yml build --parallel "$@" kafka postgres redis prometheus \
  postgres-exporter tokens
say "... $((SECONDS - started)) s; docker-compose build webhook-sink (opsmesh-devtools:dev)"
started=$SECONDS
docker-compose -f compose/docker-compose.yml build "$@" webhook-sink
say "... $((SECONDS - started)) s"
