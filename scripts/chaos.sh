#!/usr/bin/env bash
# `make chaos` / `make chaos-short`: build the images, start compose.yaml + compose.test.yaml +
# compose.chaos.yaml under a fresh project name with fresh secrets, run the chaos scenarios from the
# chaos container (python -m e2e.chaos), then always tear the project down (containers, network,
# volumes) and exit non-zero if any scenario failed.
#
# Three phases on one stack, because Redis's persistence is its command line (recreating only Redis
# between them keeps the images and the workers):
#   1. AOF on, appendfsync everysec (production's setting): the scenarios that must lose nothing;
#   2. (full only) AOF with appendfsync always: the durability scenario again, for the comparison;
#   3. persistence off: the negative control, which must report a loss.
#
#   CHAOS_MODE      short (CI: ~2,000 jobs, scenarios 2 3 5 8 + control) or full (20,000 jobs, all)
#   CHAOS_TIMEOUT   seconds for the whole run, build included (short 720, full 7200); past it, fail
#   CHAOS_JOBS, CHAOS_DURATION, CHAOS_SCENARIOS   override the mode's jobs, load seconds, scenarios
#   CHAOS_PHASES    which of the phases above run (default 1,2,3; 2 is full-only): 1 checks new scenarios
#   CHAOS_LOG       where the full log goes (default /tmp/taskq-chaos-<mode>-<time>.log)
#   COMPOSE         the compose command (default: docker compose)
set -uo pipefail
cd "$(dirname "$0")/.."

mode=${CHAOS_MODE:-short}
case "$mode" in
  short) jobs=2000 duration=20 drain=180 scenarios=2,3,5,8 timeout_default=720 ;;
  full) jobs=20000 duration=200 drain=600 scenarios=2,3,8,5,1,7,6,9,10,11,P,L,M,D timeout_default=7200 ;;
  *) echo "CHAOS_MODE must be short or full, not $mode" >&2; exit 2 ;;
esac
jobs=${CHAOS_JOBS:-$jobs} duration=${CHAOS_DURATION:-$duration} scenarios=${CHAOS_SCENARIOS:-$scenarios}
read -r -a compose_cmd <<<"${COMPOSE:-docker compose}"
timeout_s=${CHAOS_TIMEOUT:-$timeout_default}
phases=",${CHAOS_PHASES:-1,2,3},"
phase() { [[ $phases == *",$1,"* ]]; }
deadline=$(($(date +%s) + timeout_s))
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
log=${CHAOS_LOG:-/tmp/taskq-chaos-$mode-$(date +%s).log}

export COMPOSE_PROJECT_NAME=${CHAOS_PROJECT:-taskq-chaos-$(date +%s)-$$}
export TASKQ_ENV_FILE=/dev/null # a developer's .env must not change the stack under test
REDIS_PASSWORD=$(secret) API_TOKEN=$(secret)
export REDIS_PASSWORD API_TOKEN
DOCKER_GID=$(stat -c %g /var/run/docker.sock)
CHAOS_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || CHAOS_COMMIT="$CHAOS_COMMIT+dirty"
export DOCKER_GID CHAOS_COMMIT

compose=("${compose_cmd[@]}" --env-file /dev/null -f compose.yaml -f compose.test.yaml -f compose.chaos.yaml)
left() { echo $((deadline - $(date +%s))); }
step() { printf '\n==> chaos: %s (%ss left)\n' "$*" "$(left)"; }
started=$(date +%s)

teardown() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$status" -ne 0 ]; then
    step "failed with status $status: state and recent logs"
    "${compose[@]}" ps -a
    "${compose[@]}" logs --no-color --timestamps --tail=40 redis producer worker 2>&1 | tail -n 200
  fi
  step "tearing down $COMPOSE_PROJECT_NAME"
  "${compose[@]}" --profile chaos down --volumes --remove-orphans --timeout 5
  echo "chaos: $mode run took $(($(date +%s) - started))s; log in $log"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM
exec > >(tee -a "$log") 2>&1

# Redis with another persistence setting: recreate that one container (the volume stays), wait healthy.
redis_with() {
  step "recreate Redis with $*"
  env "$@" timeout --kill-after=10 "$(left)" "${compose[@]}" up --detach --wait --wait-timeout 120 \
    --no-deps --force-recreate redis
}
chaos() {
  timeout --kill-after=10 "$(left)" "${compose[@]}" run --rm --no-deps chaos \
    python3 -m e2e.chaos --jobs "$jobs" --duration "$duration" --drain "$drain" "$@"
}

step "build the images"
timeout --kill-after=10 "$(left)" "${compose[@]}" --profile chaos build || exit 1
step "start the stack and wait until every service is healthy"
timeout --kill-after=10 "$(left)" "${compose[@]}" up --detach --wait --wait-timeout 240 || exit 1

status=0
if phase 1; then
  step "phase 1: AOF everysec, scenarios $scenarios ($jobs jobs each over ${duration}s)"
  chaos --scenarios "$scenarios" || status=1
fi
if [ "$mode" = full ] && phase 2; then
  redis_with CHAOS_REDIS_APPENDONLY=yes REDIS_APPENDFSYNC=always || exit 1
  step "phase 2: AOF always, durability scenario"
  chaos --scenarios D || status=1
fi
if phase 3; then
  redis_with CHAOS_REDIS_APPENDONLY=no || exit 1
  step "phase 3: persistence off, the negative control (must report a loss)"
  chaos --scenarios control || status=1
fi
[ "$(left)" -le 0 ] && { echo "chaos: timed out after ${timeout_s}s (CHAOS_TIMEOUT)" >&2; status=1; }
exit "$status"
