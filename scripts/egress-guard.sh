#!/usr/bin/env bash
# egress-guard.sh install|remove|check|count|since|why: keep stampede's containers on this machine.
#
# Drops every packet that the host forwards from stampede's Docker network (the bridge
# STAMPEDE_BRIDGE, default stampede0, which e2e/cluster creates for kind's nodes) to anywhere but
# that same bridge: for IPv4 in the DOCKER-USER chain (dockerd jumps to it first from FORWARD and
# keeps its rules), for IPv6 at the top of FORWARD. Matching "out of anything but our bridge" rather
# than "out of the uplink" covers uplinks that appear later (a VPN, a second NIC) and touches no
# other container, VM or routed network of the machine.
#
# It also drops NEW connections from that bridge to this host's own addresses (INPUT, IPv4 and
# IPv6): a proxy or resolver listening on 0.0.0.0 here would otherwise be an exit. The cluster
# needs none: the API server's and the Service's published ports are on 127.0.0.1 and reached
# from the host, and replies to what the host opened are ESTABLISHED, which stays allowed.
#
# It must be in place before any of stampede's containers starts. `count` prints how many packets
# it dropped; that number must stay 0 (a non-zero count means something in a cluster tried to leave
# the machine); `why` prints the kernel's log of the latest drops, from a rate-limited LOG rule
# placed before the DROP. `remove` deletes exactly the rules `install` added (by their comment).
set -o errexit -o nounset -o pipefail
LOG_PREFIX=egress-guard
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMMENT="stampede-egress-guard"
LOG_TAG="stampede-egress-drop: "
BRIDGE="${STAMPEDE_BRIDGE:-stampede0}"

# v4/v6 run iptables/ip6tables waiting for the xtables lock; rule_args prints a guard rule.
v4() { iptables -w "$@"; }
v6() { ip6tables -w "$@"; }
have_v6() { command -v ip6tables >/dev/null 2>&1 && ip6tables -w -S FORWARD >/dev/null 2>&1; }

rule_args() { # rule_args forward|input drop|log
  local base=(-i "$BRIDGE" ! -o "$BRIDGE")
  # To the host itself: only new connections; replies to the host's own stay allowed.
  [ "$1" = input ] && base=(-i "$BRIDGE" -m conntrack --ctstate NEW)
  case "$2" in
    drop) printf '%s\n' "${base[@]}" -m comment --comment "$COMMENT" -j DROP ;;
    log) printf '%s\n' "${base[@]}" -m comment --comment "${COMMENT}-log" -m limit --limit 20/min -j LOG --log-prefix "$LOG_TAG" ;;
  esac
}

# ensure FAMILY CHAIN forward|input: insert the guard at the top of CHAIN unless it is there.
ensure() {
  local fam=$1 chain=$2 dir=$3 kind args
  for kind in drop log; do # inserted at 1 in this order: LOG ends up above DROP
    mapfile -t args < <(rule_args "$dir" "$kind")
    "$fam" -C "$chain" "${args[@]}" 2>/dev/null || "$fam" -I "$chain" 1 "${args[@]}"
  done
}

install() {
  is_root || die "the egress guard needs root: run 'sudo $0 install'"
  need_cmd iptables "install it: apt-get install iptables"
  mkdir -p "$STAMPEDE_STATE"
  # DOCKER-USER exists once dockerd ran; before that the guard creates it (dockerd keeps a chain
  # it finds) and records that it did, so that host-undo removes it again.
  if ! v4 -S DOCKER-USER >/dev/null 2>&1; then
    v4 -N DOCKER-USER
    record "created-chain DOCKER-USER"
  fi
  if ! v4 -C FORWARD -j DOCKER-USER 2>/dev/null; then
    v4 -I FORWARD 1 -j DOCKER-USER
    record "created-jump FORWARD DOCKER-USER"
  fi
  ensure v4 DOCKER-USER forward
  ensure v4 INPUT input
  if have_v6; then ensure v6 FORWARD forward; ensure v6 INPUT input; fi
  log "dropping traffic forwarded from ${BRIDGE} to anywhere else, and new connections from it to this host"
}

# remove: delete the guard's rules (by comment), and the chain and jump it created itself.
remove() {
  is_root || die "removing the egress guard needs root: run 'sudo $0 remove'"
  local fam chain n=0 line
  for fam in v4 v6; do
    [ "$fam" = v6 ] && ! have_v6 && continue
    for chain in DOCKER-USER FORWARD INPUT; do
      "$fam" -S "$chain" >/dev/null 2>&1 || continue
      while read -r line; do
        # shellcheck disable=SC2086 # the rule's words, as iptables -S printed them
        eval "$fam -D ${line#-A }" && n=$((n + 1))
      done < <("$fam" -S "$chain" | grep -F -- "--comment ${COMMENT}" || true)
    done
  done
  log "removed ${n} guard rules"
  if recorded "created-jump FORWARD DOCKER-USER" && v4 -C FORWARD -j DOCKER-USER 2>/dev/null &&
    ! v4 -S DOCKER-USER | grep -qv '^-N'; then
    v4 -D FORWARD -j DOCKER-USER && log "removed the jump FORWARD -> DOCKER-USER it had added"
  fi
  if recorded "created-chain DOCKER-USER" && v4 -S DOCKER-USER >/dev/null 2>&1 &&
    ! v4 -S FORWARD | grep -q -- '-j DOCKER-USER' && ! v4 -S DOCKER-USER | grep -qv '^-N'; then
    v4 -X DOCKER-USER && log "removed the chain DOCKER-USER it had created"
  fi
  unrecord "created-chain DOCKER-USER"
  unrecord "created-jump FORWARD DOCKER-USER"
}

# check: the guard is in place (exit 1 otherwise).
check() {
  local fwd inp
  mapfile -t fwd < <(rule_args forward drop)
  mapfile -t inp < <(rule_args input drop)
  v4 -C FORWARD -j DOCKER-USER 2>/dev/null || return 1
  v4 -C DOCKER-USER "${fwd[@]}" 2>/dev/null || return 1
  v4 -C INPUT "${inp[@]}" 2>/dev/null || return 1
  if have_v6; then
    v6 -C FORWARD "${fwd[@]}" 2>/dev/null || return 1
    v6 -C INPUT "${inp[@]}" 2>/dev/null || return 1
  fi
}

# drops FAMILY CHAIN: packets the guard's DROP rule in CHAIN dropped.
drops() {
  "$1" -vnxL "$2" 2>/dev/null | awk -v c="$COMMENT" '$3 == "DROP" && index($0, c) {s += $1} END {print s + 0}'
}

count() {
  is_root || die "reading the egress guard's counter needs root: run 'sudo $0 count'"
  local n=0
  n=$((n + $(drops v4 DOCKER-USER) + $(drops v4 INPUT)))
  if have_v6; then n=$((n + $(drops v6 FORWARD) + $(drops v6 INPUT))); fi
  echo "$n"
}

# since BEFORE DIR: report the drops since BEFORE (an earlier `count`, or "unreadable"). When the
# counter moved, save `why` into DIR/egress-why.txt and exit 1: a drop is a bug to fix at its
# source. Without root the counter cannot be read: say so, and exit 0.
since() {
  local before=$1 dir=$2 after
  after=$(count 2>/dev/null) || after=unreadable
  if [ "$before" = unreadable ] || [ "$after" = unreadable ]; then
    log "not checked: reading the counter needs root (sudo $0 count)"
    return 0
  fi
  if [ "$after" = "$before" ]; then
    log "0 packets dropped during this run"
    return 0
  fi
  mkdir -p "$dir"
  why >"${dir}/egress-why.txt" 2>&1 || true
  log "$((after - before)) packets dropped during this run: something tried to leave the machine; see ${dir}/egress-why.txt"
  return 1
}

why() {
  dmesg 2>/dev/null | grep -F "$LOG_TAG" | tail -n "${1:-20}" ||
    log "no drop logged (or the kernel log is not readable here)"
}

case "${1:-}" in
  install) install ;;
  remove) remove ;;
  check) check ;;
  count) count ;;
  since) since "${2:?usage: $0 since BEFORE DIR}" "${3:?usage: $0 since BEFORE DIR}" ;;
  why) why "${2:-20}" ;;
  *) die "usage: $0 install|remove|check|count|since BEFORE DIR|why [N]" ;;
esac
