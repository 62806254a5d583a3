# shellcheck shell=bash
# A run's stage timeline: every long step of a run writes one line to STAMPEDE_STAGES (a TSV in the
# run's artifacts: name, start and end in Unix milliseconds, ok|failed), and says every 30 s that it
# is still running. The suite adds its own stages (cluster, each spec, cleanup) to the same file,
# and `stampede timeline DIR` prints the table and keeps it in results.json. Source after lib.sh.

_now_ms() { date +%s%3N; }

# stage_record NAME START_MS END_MS STATUS: one line of the timeline (nothing when no file is set).
stage_record() {
  [ -n "${STAMPEDE_STAGES:-}" ] || return 0
  printf '%s\t%s\t%s\t%s\n' "${1//$'\t'/ }" "$2" "$3" "$4" >>"$STAMPEDE_STAGES"
}

# stage NAME CMD...: run CMD as the stage NAME, its output as it is, with a heartbeat line every
# 30 s while it runs (STAMPEDE_HEARTBEAT=0 for none: a step that prints its own). Returns CMD's
# status.
stage() {
  local name=$1; shift
  local t0 rc=0 every=${STAMPEDE_HEARTBEAT:-30} beat=""
  t0=$(_now_ms)
  if [ "$every" -gt 0 ] 2>/dev/null; then
    ( s=$SECONDS; while sleep "$every"; do log "${name}: still running ($((SECONDS - s))s)"; done ) &
    beat=$!
  fi
  "$@" || rc=$?
  [ -z "$beat" ] || { kill "$beat" 2>/dev/null; wait "$beat" 2>/dev/null || true; }
  stage_record "$name" "$t0" "$(_now_ms)" "$([ "$rc" = 0 ] && echo ok || echo failed)"
  return "$rc"
}
