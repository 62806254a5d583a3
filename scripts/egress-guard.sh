#!/usr/bin/env bash
# egress-guard.sh install|check|count|why: keep containers on this machine.
#
# Drops every packet that the host forwards from a container out of an uplink (an interface that
# carries a default route), for IPv4 in the DOCKER-USER chain (dockerd jumps to it first from
# FORWARD and keeps its rules) and for IPv6 at the top of FORWARD. It must be in place before any
# container starts: pods' first connections to the Service network and containers' DNS lookups
# otherwise leave through the default route while a cluster starts. `count` prints how many packets
# it dropped; that number must stay 0 (a non-zero count means something in a cluster tried to leave
# the machine); `why` prints the kernel's log of the latest drops (source, destination, ports),
# from a rate-limited LOG rule placed before the DROP.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=egress-guard
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COMMENT="stampede-egress-guard"
LOG_TAG="stampede-egress-drop: "

uplinks() {
  { ip -4 route show default; ip -6 route show default; } 2>/dev/null |
    awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' | sort -u
}

install() {
  is_root || die "the egress guard needs root: run 'sudo $0 install'"
  need_cmd iptables "install it: apt-get install iptables"
  local dev
  iptables -w -N DOCKER-USER 2>/dev/null || true
  iptables -w -C FORWARD -j DOCKER-USER 2>/dev/null || iptables -w -I FORWARD 1 -j DOCKER-USER
  for dev in $(uplinks); do
    iptables -w -C DOCKER-USER -o "$dev" -m comment --comment "$COMMENT" -j DROP 2>/dev/null ||
      iptables -w -I DOCKER-USER 1 -o "$dev" -m comment --comment "$COMMENT" -j DROP
    iptables -w -C DOCKER-USER -o "$dev" -m comment --comment "$COMMENT-log" -m limit --limit 20/min -j LOG --log-prefix "$LOG_TAG" 2>/dev/null ||
      iptables -w -I DOCKER-USER 1 -o "$dev" -m comment --comment "$COMMENT-log" -m limit --limit 20/min -j LOG --log-prefix "$LOG_TAG"
    if command -v ip6tables >/dev/null 2>&1; then
      ip6tables -w -C FORWARD -o "$dev" -m comment --comment "$COMMENT" -j DROP 2>/dev/null ||
        ip6tables -w -I FORWARD 1 -o "$dev" -m comment --comment "$COMMENT" -j DROP
      ip6tables -w -C FORWARD -o "$dev" -m comment --comment "$COMMENT-log" -m limit --limit 20/min -j LOG --log-prefix "$LOG_TAG" 2>/dev/null ||
        ip6tables -w -I FORWARD 1 -o "$dev" -m comment --comment "$COMMENT-log" -m limit --limit 20/min -j LOG --log-prefix "$LOG_TAG"
    fi
    log "dropping traffic forwarded from containers out of ${dev}"
  done
  [ -n "$(uplinks)" ] || log "no default route: nothing can leave, no rule needed"
}

# check: the guard is in place for every uplink (exit 1 otherwise).
check() {
  local dev
  for dev in $(uplinks); do
    iptables -w -C DOCKER-USER -o "$dev" -m comment --comment "$COMMENT" -j DROP 2>/dev/null || return 1
    iptables -w -C FORWARD -j DOCKER-USER 2>/dev/null || return 1
  done
}

count() {
  local v4 v6=0
  v4=$(iptables -w -vnxL DOCKER-USER 2>/dev/null | awk -v c="$COMMENT" '$3 == "DROP" && index($0, c) {s += $1} END {print s + 0}')
  if command -v ip6tables >/dev/null 2>&1; then
    v6=$(ip6tables -w -vnxL FORWARD 2>/dev/null | awk -v c="$COMMENT" '$3 == "DROP" && index($0, c) {s += $1} END {print s + 0}')
  fi
  echo $((v4 + v6))
}

why() {
  dmesg 2>/dev/null | grep -F "$LOG_TAG" | tail -n "${1:-20}" ||
    log "no drop logged (or the kernel log is not readable here)"
}

case "${1:-}" in
  install) install ;;
  check) check ;;
  count) count ;;
  why) why "${2:-20}" ;;
  *) die "usage: $0 install|check|count|why [N]" ;;
esac
