#!/bin/bash
# Writes server.properties from the KAFKA_* environment (KAFKA_LOG_DIRS -> log.dirs), formats
# the storage with CLUSTER_ID on the first start (the data volume keeps it), then runs the
# broker in the foreground.
set -euo pipefail
props=/etc/kafka/server.properties
: >"$props"
while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS | KAFKA_JVM_OPTS) ;;
    KAFKA_*)
      key="${name#KAFKA_}"
      key="${key,,}"
      printf '%s=%s\n' "${key//_/.}" "$value" >>"$props"
      ;;
  esac
done < <(env)
: "${CLUSTER_ID:?set CLUSTER_ID (a base64 UUID) so the storage is formatted once}"
log_dir="$(sed -n 's/^log\.dirs=//p' "$props")"
# shellcheck disable=SC2206  # the heap options are words
jvm=(java ${KAFKA_HEAP_OPTS} ${KAFKA_JVM_OPTS:-} -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties -cp '/opt/kafka/libs/*')
if [ ! -f "${log_dir:-/var/lib/kafka/data}/meta.properties" ]; then
  "${jvm[@]}" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$props"
fi
exec "${jvm[@]}" kafka.Kafka "$props"
