#!/usr/bin/env bash
# host-undo.sh [--purge]: take back what scripts/host-setup.sh changed on this host, and report
# each thing removed:
#   - stampede's own dockerd, if host setup started it (stopped by its pid; its containers stop
#     with it), then the iptables rules and chains that engine created, which are told apart from
#     the rest by a snapshot host setup took before its first change: only chains that are new
#     since the snapshot, and new rules that jump to them or name stampede's bridge, are removed;
#   - the egress guard's rules (by their comment), and the DOCKER-USER chain if the guard created it;
#   - the entries under /etc/systemd/system that enable or mask docker.service, docker.socket and
#     containerd.service, back to what they were before (host setup masked them);
#   - net.ipv4.ip_forward, back to its value before whoever changed it (stampede's engine or
#     another), and the inotify limits host setup raised, back to their values before;
#   - the runtime wrapper, the engine's config and log, the record itself;
#   - with --purge, also the engine's data (images, stopped containers) under STAMPEDE_STATE.
# Packages that host setup installed with apt are named, not removed (other software may have
# come to use them). /etc/docker is never written by host setup, so there is nothing to restore.
# Ends by comparing iptables with the snapshot; a difference that is not stampede's is reported.
# Holds the host lock that host setup takes, so that it never runs in the middle of one.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=host-undo
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=""
case "${1:-}" in
  --purge) purge=1 ;;
  "") ;;
  *) die "usage: $0 [--purge]" ;;
esac
is_root || die "host-undo changes iptables and stops a root dockerd: run 'sudo make host-undo'"

BRIDGE="${STAMPEDE_BRIDGE:-stampede0}"
DOCKERD_PID="${STAMPEDE_RUN}/dockerd.pid"

stop_engine() {
  local pid=""
  [ -s "$DOCKERD_PID" ] && pid=$(cat "$DOCKERD_PID")
  if [ -n "$pid" ] && [ -r "/proc/${pid}/comm" ] && [ "$(cat "/proc/${pid}/comm")" = dockerd ]; then
    local n
    n=$(DOCKER_HOST="unix://${STAMPEDE_DOCKER_SOCK}" docker ps -q 2>/dev/null | wc -l)
    log "stopping stampede's dockerd (pid ${pid}; ${n} running containers stop with it)"
    kill "$pid"
    retry_until 90 "dockerd ${pid} to exit" bash -c "! kill -0 ${pid}" || die "dockerd ${pid} did not exit in 90 s"
    log "removed: stampede's Docker engine (pid ${pid})"
  fi
  rm -rf "$STAMPEDE_RUN"
}

# engine_rules FAMILY: delete what stampede's engine added to iptables since the snapshot.
engine_rules() {
  local fam=$1 ipt before table chain line n=0
  ipt=iptables; [ "$fam" = v6 ] && ipt=ip6tables
  command -v "$ipt" >/dev/null 2>&1 || return 0
  before="${STAMPEDE_STATE}/iptables-before.${fam}"
  [ -f "$before" ] || { log "no ${fam} snapshot: leaving ${fam} rules as they are"; return 0; }
  for table in filter nat mangle raw; do
    "$ipt" -w -t "$table" -S >/dev/null 2>&1 || continue
    local new_chains=()
    mapfile -t new_chains < <(comm -13 <(chains_in "$table" <"$before") <(iptables_state "$fam" | chains_in "$table") | grep -E '^(DOCKER|STAMPEDE)' || true)
    # New rules (not in the snapshot) that jump to a new chain, sit in one, or name our bridge.
    while read -r line; do
      [ -n "$line" ] || continue
      chain=$(awk '{print $2}' <<<"$line")
      if in_list "$chain" "${new_chains[@]}" || jumps_to_any "$line" "${new_chains[@]}" || grep -qw -- "$BRIDGE" <<<"$line"; then
        eval "$ipt -w -t $table -D ${line#-A }" && n=$((n + 1))
      fi
    done < <(comm -13 <(rules_in "$table" <"$before" | sort) <(iptables_state "$fam" | rules_in "$table" | sort))
    for chain in "${new_chains[@]}"; do
      "$ipt" -w -t "$table" -F "$chain" && "$ipt" -w -t "$table" -X "$chain" && n=$((n + 1))
    done
    # Built-in chains' policies: dockerd sets FORWARD's to DROP when it turns forwarding on.
    local policy
    while read -r chain policy; do
      if [ "$(iptables_state "$fam" | policy_of "$table" "$chain")" != "$policy" ]; then
        "$ipt" -w -t "$table" -P "$chain" "$policy" && n=$((n + 1)) && log "restored: ${fam} ${table} ${chain} policy ${policy}"
      fi
    done < <(awk -v t="*$table" '/^\*/ {on = ($0 == t)} on && /^:/ && $2 != "-" {sub(/^:/, "", $1); print $1, $2}' "$before")
  done
  [ "$n" = 0 ] || log "removed: ${n} ${fam} rules and chains that stampede's engine had added"
  drop_new_empty_tables "$fam"
}

# drop_new_empty_tables FAMILY: with iptables' nf_tables backend a table, once created, stays
# after its last rule is gone. A table that did not exist before host setup and now holds no rule
# was created by what host setup started: delete it.
drop_new_empty_tables() {
  local fam=$1 ipt=iptables nftfam=ip before table
  [ "$fam" = v6 ] && { ipt=ip6tables; nftfam=ip6; }
  "$ipt" -V 2>/dev/null | grep -q nf_tables && command -v nft >/dev/null 2>&1 || return 0
  before="${STAMPEDE_STATE}/iptables-before.${fam}"
  for table in $(iptables_state "$fam" | sed -n 's/^\*//p'); do
    grep -qxF "*${table}" "$before" && continue
    # No rule is left in it; a policy (dockerd sets FORWARD's to DROP) on a table that did not
    # exist before host setup was set by what host setup started.
    if [ -z "$(iptables_state "$fam" | rules_in "$table")" ]; then
      nft delete table "$nftfam" "$table" && log "removed: the empty ${fam} table ${table} that did not exist before"
    fi
  done
}

# chains_in TABLE / rules_in TABLE: the chain names / -A lines of TABLE in an iptables-save text.
chains_in() { awk -v t="*$1" '/^\*/ {on = ($0 == t)} on && /^:/ {sub(/^:/, "", $1); print $1}' | sort; }
policy_of() { awk -v t="*$1" -v c=":$2" '/^\*/ {on = ($0 == t)} on && $1 == c {print $2}'; }
rules_in() { awk -v t="*$1" '/^\*/ {on = ($0 == t)} on && /^-A /'; }
in_list() { local x=$1 y; shift; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }
jumps_to_any() { local line=$1 y; shift; for y in "$@"; do [[ "$line" == *" -j ${y}"* || "$line" == *" -g ${y}"* ]] && return 0; done; return 1; }

compare() {
  local fam diff_out ok=1
  for fam in v4 v6; do
    [ -f "${STAMPEDE_STATE}/iptables-before.${fam}" ] || continue
    if ! diff_out=$(diff "${STAMPEDE_STATE}/iptables-before.${fam}" <(iptables_state "$fam")); then
      ok=""
      log "${fam} rules differ from before host setup (not stampede's, left as they are):"
      printf '%s\n' "$diff_out" >&2
    fi
  done
  [ -n "$ok" ] && log "iptables is as it was before host setup"
  return 0
}

# restore_units: the system's Docker units' entries as host setup found them (its tar).
restore_units() {
  [ -f "$UNITS_BEFORE" ] || return 0
  local entries=() e
  mapfile -t entries < <(unit_entries)
  for e in ${entries[@]+"${entries[@]}"}; do rm -f "${SYSTEMD_ETC:?}/${e}"; done
  tar -C "$SYSTEMD_ETC" -xpf "$UNITS_BEFORE"
  systemd_reload
  if recorded "masked-units"; then
    log "restored: ${DOCKER_UNITS[*]} enabled and unmasked as before host setup ($(tar -tf "$UNITS_BEFORE" | wc -l) entries)"
  fi
}

# restore_ip_forward: net.ipv4.ip_forward as it was before host setup. dockerd turns it on,
# whether the engine is stampede's or one that host setup only used.
restore_ip_forward() {
  [ -f "${STAMPEDE_STATE}/ip_forward-before" ] || return 0
  local fwd
  fwd=$(cat "${STAMPEDE_STATE}/ip_forward-before")
  if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != "$fwd" ]; then
    echo "$fwd" >/proc/sys/net/ipv4/ip_forward && log "restored: net.ipv4.ip_forward=${fwd}"
  fi
}

main() {
  host_lock
  if [ ! -d "$STAMPEDE_STATE" ]; then
    log "nothing to undo: ${STAMPEDE_STATE} does not exist"
    return 0
  fi
  local engine_ours=""
  recorded "started-engine" && engine_ours=1
  stop_engine
  restore_units
  "${REPO_ROOT}/scripts/egress-guard.sh" remove
  if [ -n "$engine_ours" ]; then
    engine_rules v4
    engine_rules v6
  else
    drop_new_empty_tables v4
    drop_new_empty_tables v6
  fi
  restore_ip_forward
  local line
  while read -r line; do
    sysctl -q -w "$line" && log "restored: ${line}"
  done < <(sed -n 's/^sysctl //p' "$HOST_CHANGES" 2>/dev/null)
  compare
  if [ -f "$HOST_CHANGES" ] && grep -q '^installed-packages ' "$HOST_CHANGES"; then
    log "kept the packages host setup installed ($(sed -n 's/^installed-packages //p' "$HOST_CHANGES" | tr '\n' ' ')): remove them with apt-get if nothing else uses them"
  fi
  local f
  for f in bin daemon.json dockerd.log key.json host-changes iptables-before.v4 iptables-before.v6 ip_forward-before systemd-before.tar; do
    [ -e "${STAMPEDE_STATE}/${f}" ] && rm -rf "${STAMPEDE_STATE:?}/${f}" && log "removed: ${STAMPEDE_STATE}/${f}"
  done
  if [ -n "$purge" ]; then
    [ -e "${STAMPEDE_STATE}/docker" ] && rm -rf "${STAMPEDE_STATE:?}/docker" && log "removed: ${STAMPEDE_STATE}/docker (the engine's images and containers)"
    rmdir "$STAMPEDE_STATE" 2>/dev/null && log "removed: ${STAMPEDE_STATE}"
  elif [ -e "${STAMPEDE_STATE}/docker" ]; then
    log "kept ${STAMPEDE_STATE}/docker (images, $(du -sh "${STAMPEDE_STATE}/docker" 2>/dev/null | cut -f1)): 'make host-undo PURGE=true' removes it"
  fi
  return 0
}

main
