#!/bin/bash
# with-token.sh VARIABLE COMMAND...: runs COMMAND with VARIABLE set to the stack's API token
# (tokens/init.sh wrote it), for a service that takes its token only from the environment
# (metrics-ingest's METRICS_INGEST_API_TOKEN).
set -euo pipefail
variable="$1"
shift
export "$variable=$(cat /run/opsmesh/api-token)"
exec "$@"
