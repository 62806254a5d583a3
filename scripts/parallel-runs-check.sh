#!/usr/bin/env bash
# parallel-runs-check.sh: two `make e2e` runs on one host at once, the second started while the
# first is still in host setup; both must pass, and `make host-undo` after both must leave the
# host's iptables (IPv4 and IPv6), the sysctls host setup touches and docker.io's systemd units
# byte-identical to what they were before the first host setup. A manual, long check (two real
# clusters, about 10 minutes on 2 cores), not part of make test: it undoes host setup first, so
# run it only where nothing else uses stampede's engine. Needs root. Artifacts under
# ARTIFACTS/parallel-<time>/ (each run's log, the host's state before and after, their diff).
set -o errexit -o nounset -o pipefail
LOG_PREFIX=parallel-runs
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
is_root || die "needs root (host setup and undo)"

out="${ARTIFACTS:-${REPO_ROOT}/_artifacts}/parallel-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

# host_state: what host setup changes and undo must restore, as text that compares byte for byte.
host_state() {
  echo "## iptables v4"; iptables_state v4
  echo "## iptables v6"; iptables_state v6
  echo "## sysctls"
  sysctl net.ipv4.ip_forward fs.inotify.max_user_instances fs.inotify.max_user_watches
  echo "## systemd units of docker.io (their entries under ${SYSTEMD_ETC}: lib.sh's unit_entries)"
  local e
  while IFS= read -r e; do
    printf '%s -> %s\n' "$e" "$(readlink "${SYSTEMD_ETC}/${e}" || echo "(a file)")"
  done < <(unit_entries | LC_ALL=C sort)
}

log "undoing host setup, so that the check starts from the host's own state"
scripts/host-undo.sh >"${out}/undo-before.log" 2>&1 || die "host undo failed (${out}/undo-before.log)"
host_state >"${out}/host-before.txt"

log "run A: make e2e (${out}/a.log)"
( ARTIFACTS="${out}/a" make --no-print-directory e2e >"${out}/a.log" 2>&1; echo "$?" >"${out}/a.rc" ) &
a=$!
# B starts while A is still in host setup: the two take turns on host setup's lock.
retry_until 120 "run A's host setup to start" grep -q '\[host-setup\]\|\[egress-guard\]' "${out}/a.log" ||
  die "run A did not reach host setup within 120 s (${out}/a.log)"
if grep -q 'dockerd ready' "${out}/a.log"; then
  log "note: A's engine was already up when B started"
else
  log "run B starts while A is in host setup"
fi
log "run B: make e2e (${out}/b.log)"
( ARTIFACTS="${out}/b" make --no-print-directory e2e >"${out}/b.log" 2>&1; echo "$?" >"${out}/b.rc" ) &
b=$!
wait "$a" "$b" || true
ra=$(cat "${out}/a.rc") rb=$(cat "${out}/b.rc")
log "run A: rc ${ra}; run B: rc ${rb}"

log "undoing host setup after both"
scripts/host-undo.sh >"${out}/undo-after.log" 2>&1 || die "host undo failed (${out}/undo-after.log)"
host_state >"${out}/host-after.txt"
if diff -u "${out}/host-before.txt" "${out}/host-after.txt" >"${out}/host.diff"; then
  log "host state byte-identical after both runs and undo ($(wc -l <"${out}/host-after.txt") lines: iptables v4/v6, sysctls, units)"
  same=1
else
  log "host state differs after undo:"; cat "${out}/host.diff" >&2
  same=0
fi
log "setting the host up again for what comes next"
scripts/host-setup.sh >"${out}/setup-after.log" 2>&1 || log "host setup afterwards failed (${out}/setup-after.log)"
if [ "$ra" != 0 ] || [ "$rb" != 0 ] || [ "$same" != 1 ]; then
  die "failed: run A rc ${ra}, run B rc ${rb}, host state $(if [ "$same" = 1 ]; then echo same; else echo differs; fi) (${out})"
fi
log "PASS: both runs passed, the host is as it was (${out})"
