#!/usr/bin/env bash
# `make e2e`: build the images, start compose.yaml + compose.test.yaml under a fresh project name with
# fresh secrets, run the e2e container (the scenarios in services/e2e/scenarios), then always tear the
# project down (containers, network, volumes) and exit with the suite's status.
#
# Two phases on one stack: taskq's own images first; then the producer and the workers are swapped for
# the examples/thumbnails images (its compose overlay, 2 workers; Redis and the sink stay up) and the
# user-task scenario runs (test_05_user_tasks.py, skipped in the first phase).
#
# An exit code alone is not trusted: before the run, a container told to fail must be seen failing
# (a compose wrapper that swallows exit codes would otherwise pass anything), and after it, pytest's
# own summary must show >= 1 passed and 0 failed / errors (scripts/e2e_summary.py, unit-tested in
# tests/scripts/): a run that collected nothing, or lost its output, fails.
#
#   COMPOSE       the compose command (default: docker compose)
#   E2E_TIMEOUT   seconds for the whole run, build included (default 900); past it the run fails
#   E2E_DASHBOARD_PROBE  the host-side dashboard check, given the published URL (default:
#                 python3 scripts/dashboard_probe.py; the script's own tests put a stand-in here)
#   E2E_PROJECT   project name (default: taskq-e2e-<time>-<pid>, so runs never share state)
#   PYTEST_ADDOPTS  passed to pytest in the e2e container, e.g. "-k redis -x"
set -uo pipefail
cd "$(dirname "$0")/.."

read -r -a compose_cmd <<<"${COMPOSE:-docker compose}"
timeout_s=${E2E_TIMEOUT:-900}
deadline=$(($(date +%s) + timeout_s))
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

export COMPOSE_PROJECT_NAME=${E2E_PROJECT:-taskq-e2e-$(date +%s)-$$}
# A developer's .env must not change the test stack: no env_file, no .env interpolation.
export TASKQ_ENV_FILE=/dev/null
REDIS_PASSWORD=$(secret) API_TOKEN=$(secret)
export REDIS_PASSWORD API_TOKEN
# The e2e container joins the group that owns the Docker socket instead of running as root.
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
export DOCKER_GID

compose=("${compose_cmd[@]}" --env-file /dev/null -f compose.yaml -f compose.test.yaml)
# The second phase's files: the example's overlay on top (a superset of the first phase's services).
example=("${compose[@]}" -f examples/thumbnails/compose.yaml)
EXAMPLE_WORKERS=2
left() { echo $((deadline - $(date +%s))); }
step() { printf '\n==> e2e: %s (%ss left)\n' "$*" "$(left)"; }

teardown() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$status" -ne 0 ]; then
    step "failed with status $status: state and recent logs"
    "${example[@]}" ps -a
    "${example[@]}" logs --no-color --timestamps --tail=80 redis producer worker mailpit 2>&1 | tail -n 400
  fi
  step "tearing down $COMPOSE_PROJECT_NAME"
  "${example[@]}" --profile e2e down --volumes --remove-orphans --timeout 5
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

step "build the images (taskq's, then the example's FROM them)"
timeout --kill-after=10 "$(left)" "${example[@]}" --profile e2e build || exit 1
step "self-check: a failing container run must be seen as a failure"
timeout --kill-after=10 "$(left)" "${compose[@]}" run --rm --no-deps -T e2e python3 -c 'raise SystemExit(3)'
probe=$?
if [ "$probe" -ne 3 ]; then
  echo "e2e: a container that exits 3 was reported as $probe by '${compose_cmd[*]} run': its exit codes cannot be trusted" >&2
  exit 1
fi
step "start the stack and wait until every service is healthy"
timeout --kill-after=10 "$(left)" "${compose[@]}" up --detach --wait --wait-timeout 180 || exit 1
# Runs the e2e container with the compose files of the array named by $1 (then `run` options and the
# command), and fails unless pytest's own summary says >= 1 passed, 0 failed, 0 errors.
scenarios() {
  local -n files=$1
  shift
  local output status
  output=$(mktemp "${TMPDIR:-/tmp}/taskq-e2e-XXXXXX.log")
  timeout --kill-after=10 "$(left)" "${files[@]}" run --rm --no-deps -T "$@" 2>&1 | tee "$output"
  status=${PIPESTATUS[0]}
  [ "$status" -ne 0 ] && [ "$(left)" -le 0 ] && echo "e2e: timed out after ${timeout_s}s (E2E_TIMEOUT)" >&2
  # pytest's own verdict, whatever the exit code said.
  python3 scripts/e2e_summary.py "$output" || { [ "$status" -ne 0 ] || status=1; }
  rm -f "$output"
  return "$status"
}

step "run the scenarios"
scenarios compose e2e
status=$?

step "the dashboard from this host, through the stack's published port"
read -r -a probe_cmd <<<"${E2E_DASHBOARD_PROBE:-python3 scripts/dashboard_probe.py}"
published=$("${compose[@]}" port producer 8000) && [ -n "$published" ] && "${probe_cmd[@]}" "http://$published"
probe_status=$?
[ "$status" -ne 0 ] || status=$probe_status

step "second phase: the examples/thumbnails images, $EXAMPLE_WORKERS workers"
if timeout --kill-after=10 "$(left)" "${example[@]}" up --detach --wait --wait-timeout 180 \
  --scale worker="$EXAMPLE_WORKERS"; then
  scenarios example -e E2E_THUMBNAILS=1 e2e python3 -m pytest scenarios/test_05_user_tasks.py
  example_status=$?
else
  example_status=1
fi
[ "$status" -ne 0 ] || status=$example_status
exit "$status"
