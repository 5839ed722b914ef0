#!/bin/bash
# One-shot (the compose service `tokens`): the stack's API token, written to the `secrets`
# volume before the services start. OPSMESH_API_TOKEN (from compose/.env or the shell) wins;
# otherwise the token already in the volume is kept, or a new random one is made.
#   /run/opsmesh/api-token   the bare token: Prometheus's credentials_file, amtool, curl
#   /run/opsmesh/api-tokens  "token:write": ALERT_ENGINE_API_TOKENS_FILE, NOTIFIER_API_TOKENS_FILE
set -euo pipefail
dir=/run/opsmesh
if [ -n "${OPSMESH_API_TOKEN:-}" ]; then
  token="$OPSMESH_API_TOKEN"
  source="OPSMESH_API_TOKEN"
elif [ -s "$dir/api-token" ]; then
  token="$(cat "$dir/api-token")"
  source="the secrets volume"
else
  token="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
  source="a new random token"
fi
if [ "${#token}" -lt 16 ] || [[ "$token" =~ [[:space:]:\;] ]]; then
  echo "OPSMESH_API_TOKEN must be at least 16 characters, without spaces, ':' or ';'" >&2
  exit 1
fi
umask 022
printf '%s\n' "$token" >"$dir/api-token"
printf '%s:write\n' "$token" >"$dir/api-tokens"
echo "API token from $source; read it with: docker compose exec alert-engine cat $dir/api-token"
