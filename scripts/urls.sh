#!/usr/bin/env bash
# Printed by `make up` once the stack is healthy: where things are and a curl that works with .env.
set -euo pipefail
cd "$(dirname "$0")/.."
setting() { sed -n "s/^$1=//p" .env | tail -n 1; }
port=$(setting API_PORT)
ui=$(setting MAILPIT_UI_PORT)
token=$(setting API_TOKEN)
api="http://127.0.0.1:${port:-8000}"
# Generated tokens are URL-safe base64 ([A-Za-z0-9_-]), so they need no quoting inside "...".
auth=""
[ -n "$token" ] && auth=" -H \"Authorization: Bearer $token\""
cat <<TXT

taskq is up.
  API        $api   (Swagger UI: $api/docs, Prometheus: $api/metrics)
  Mailpit    http://127.0.0.1:${ui:-8025}   (the emails the workers send)
  Manage     make ps | make logs | make scale N=3 | make down

Queue an email (the token is API_TOKEN in .env), then read the job back with its id:
  curl -sS -X POST $api/send-email$auth \\
    -H "Content-Type: application/json" \\
    -d '{"recipient_email": "you@example.com", "subject": "Hello", "body": "Sent through taskq"}'
  curl -sS "$api/jobs/<job_id>?wait=10"$auth

TXT
