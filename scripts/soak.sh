#!/usr/bin/env bash
# soak.sh [ginkgo args...]: the registration specs N times on one kept kind cluster, each run with
# a fresh seed, then their figures together (`stampede soak`): per spec Ginkgo's states and the
# checker's verdicts, the canary's detection rate with its 95% interval and the time to its first
# violation, and the false alarms on the modes that promise exactly once; and trend.html, the same runs over time.
#
# Environment: N (runs, default 20), LABELS (default registration: not chaos, not the self-test),
# CLUSTER (default stampede-soak: created by the first run when absent, kept afterwards like any
# reuse-mode cluster), ARTIFACTS (base directory: the soak writes ARTIFACTS/soak-<UTC time>/, a
# directory per run in it, soak.json, soak.md and trend.html beside them). SEED is ignored: every run
# picks its own. Other variables of scripts/e2e.sh pass through.
#
# A run that fails does not stop the soak: its exit code is logged and its artifacts are read
# with the others. The soak exits 1 when a run of an exactly-once mode broke an invariant (a false
# alarm), the canary was never caught, or nothing was judged. Ctrl-C stops the run in progress
# (scripts/e2e.sh cleans up after it) and the runs so far are still read together.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=soak
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd go "install Go 1.26 (https://go.dev/doc/install) and put it on PATH"
cd "$REPO_ROOT"
N="${N:-20}"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number of runs (got '${N}')"
if [ -n "${SEED:-}" ]; then
  log "SEED=${SEED} ignored: each run of a soak picks a fresh seed (replay one run with its repro line)"
fi
unset SEED
export CLUSTER="${CLUSTER:-stampede-soak}" LABELS="${LABELS:-registration}"
base="${ARTIFACTS:-${REPO_ROOT}/_artifacts}"
soak_dir="${base}/soak-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$soak_dir"
# Every run's directory, and its `latest` link, go under the soak's own directory.
export ARTIFACTS="$soak_dir"

# The aggregator builds before the first run: a soak that cannot read its runs is not started.
bin=$(mktemp -d "${TMPDIR:-/tmp}/stampede-soak-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
go build -o "${bin}/stampede" ./e2e/cmd/stampede

# A run goes in the background so that a SIGTERM to the soak reaches it at once (scripts/e2e.sh
# restores SIGINT, which the background would ignore). Ctrl-C reaches the run by itself: it is
# in the terminal's process group; forwarding it too would count as a second Ctrl-C there.
run_pid=""
stopped=""
# shellcheck disable=SC2317 # called by the traps below
on_signal() {
  stopped=$1
  log "got SIG${1}: stopping after the run in progress has cleaned up"
  if [ "$1" = TERM ] && [ -n "$run_pid" ]; then kill -TERM "$run_pid" 2>/dev/null || true; fi
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

log "${N} runs of LABELS='${LABELS}' on the kept cluster ${CLUSTER}, artifacts in ${soak_dir}"
start=$SECONDS
started=0
failed=0
for ((i = 1; i <= N; i++)); do
  [ -z "$stopped" ] || break
  started=$i
  run_start=$SECONDS
  log "run ${i}/${N}"
  "${REPO_ROOT}/scripts/e2e.sh" reuse "$@" &
  run_pid=$!
  # wait returns early when a trapped signal arrives: wait again until the run has ended.
  rc=0
  while :; do
    wait "$run_pid" && rc=0 || rc=$?
    kill -0 "$run_pid" 2>/dev/null || break
  done
  run_pid=""
  if [ "$rc" != 0 ]; then
    failed=$((failed + 1))
    log "run ${i}/${N} exited ${rc} after $((SECONDS - run_start))s$([ -n "$stopped" ] || echo '; going on')"
  else
    log "run ${i}/${N} passed in $((SECONDS - run_start))s"
  fi
  # scripts/e2e.sh exits 130 or 143 when it was interrupted (by a signal to it alone, too).
  if [ -z "$stopped" ] && { [ "$rc" = 130 ] || [ "$rc" = 143 ]; }; then
    stopped=$(kill -l "$((rc - 128))")
    log "run ${i}/${N} was interrupted (SIG${stopped}): stopping the soak"
  fi
done
log "${started} runs in $((SECONDS - start))s, ${failed} exited non-zero"

runs=()
while IFS= read -r -d '' d; do runs+=("$d"); done < <(find "$soak_dir" -mindepth 1 -maxdepth 1 -type d -print0 | LC_ALL=C sort -z)
[ "${#runs[@]}" -gt 0 ] || die "no run left a directory in ${soak_dir}: see the log above"
rc=0
"${bin}/stampede" soak -out "$soak_dir" -attempted "$started" "${runs[@]}" || rc=$?
log "the cluster ${CLUSTER} is kept for the next soak or e2e-reuse; remove it with: make cluster-down CLUSTER=${CLUSTER}"
[ -z "$stopped" ] || exit $((128 + $(kill -l "$stopped")))
exit "$rc"
