#!/usr/bin/env bash
# host-setup.sh: make this host ready to run kind clusters, offline if need be. Idempotent, quick
# when already done. In order:
#   1. packages: docker.io, jq, mmdebstrap, iptables (apt, as root) when missing;
#   2. the egress guard (scripts/egress-guard.sh), before any container can start;
#   3. dockerd's settings: loopback DNS, and the capability-dropping runtime wrapper where this
#      host's capability bounding set is incomplete (privileged containers fail otherwise);
#   4. a running dockerd with those settings: an engine that already runs is used as it is, one that
#      this script started earlier is restarted (by its pid) when its settings changed.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=host-setup
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DAEMON_JSON=/etc/docker/daemon.json
WRAPPER=/usr/local/libexec/stampede/runc-capwrap
STATE_DIR=/var/lib/stampede
DOCKERD_PID="${STATE_DIR}/dockerd.pid"
DOCKERD_LOG=/var/log/stampede-dockerd.log

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install "${missing[@]}" ca-certificates
  return 0
}

# caps_incomplete: the bounding set lacks a capability that the kernel has. A privileged
# container asks for all of them, so it would fail to start here.
caps_incomplete() {
  local bnd last want
  bnd=$((16#$(awk '/^CapBnd:/{print $2}' /proc/self/status)))
  last=$(cat /proc/sys/kernel/cap_last_cap)
  want=$(((1 << (last + 1)) - 1))
  [ $((bnd & want)) -ne "$want" ]
}

# desired_daemon_json: the current daemon.json (or {}) with stampede's settings merged in.
desired_daemon_json() {
  local cur='{}'
  [ -s "$DAEMON_JSON" ] && cur=$(cat "$DAEMON_JSON")
  if caps_incomplete; then
    jq --arg w "$WRAPPER" '.dns = ["127.0.0.1"] | .runtimes["stampede-runc"] = {path: $w} | ."default-runtime" = "stampede-runc"' <<<"$cur"
  else
    jq '.dns = ["127.0.0.1"]' <<<"$cur"
  fi
}

# configure: write daemon.json and the wrapper; prints "changed" when dockerd needs a restart.
configure() {
  mkdir -p /etc/docker "$(dirname "$WRAPPER")" "$STATE_DIR"
  if caps_incomplete; then
    if ! cmp -s "${REPO_ROOT}/scripts/runc-capwrap" "$WRAPPER"; then
      install -m 0755 "${REPO_ROOT}/scripts/runc-capwrap" "$WRAPPER"
      log "installed the runtime wrapper: this host's capability bounding set is incomplete ($(awk '/^CapBnd:/{print $2}' /proc/self/status))"
    fi
  fi
  local want
  want=$(desired_daemon_json)
  if [ -s "$DAEMON_JSON" ] && [ "$(jq -S . "$DAEMON_JSON")" = "$(jq -S . <<<"$want")" ]; then
    return 0
  fi
  printf '%s\n' "$want" >"$DAEMON_JSON"
  log "wrote ${DAEMON_JSON}"
  echo changed
}

our_dockerd_pid() {
  local pid
  [ -s "$DOCKERD_PID" ] || return 1
  pid=$(cat "$DOCKERD_PID")
  [ -r "/proc/${pid}/comm" ] && [ "$(cat "/proc/${pid}/comm")" = dockerd ] && echo "$pid"
}

stop_our_dockerd() {
  local pid
  pid=$(our_dockerd_pid) || return 0
  log "stopping dockerd (pid ${pid}) to apply new settings"
  kill "$pid"
  retry_until 60 "dockerd ${pid} to exit" bash -c "! kill -0 ${pid}" || die "dockerd ${pid} did not exit; stop it and re-run"
  rm -f "$DOCKERD_PID"
}

start_dockerd() {
  log "starting dockerd (log: ${DOCKERD_LOG})"
  # setsid: the engine outlives this script and is not killed with its process group.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  echo $! >"$DOCKERD_PID"
  retry_until 60 "dockerd to answer" docker info || { tail -n 20 "$DOCKERD_LOG" >&2; die "dockerd did not start: see ${DOCKERD_LOG}"; }
  log "dockerd ready (pid $(cat "$DOCKERD_PID"))"
}

main() {
  if docker_ok && ! our_dockerd_pid >/dev/null; then
    # Someone else's engine (a laptop's Docker Desktop, a CI service): use it as it is.
    if is_root && command -v iptables >/dev/null 2>&1; then "${REPO_ROOT}/scripts/egress-guard.sh" install; fi
    log "using the running Docker engine"
    return 0
  fi
  is_root || die "no Docker engine answers and starting one needs root: start Docker, or run 'sudo make host-setup'"
  ensure_packages
  "${REPO_ROOT}/scripts/egress-guard.sh" install
  local changed
  changed=$(configure)
  if docker_ok; then
    [ -z "$changed" ] && { log "dockerd already running with stampede's settings"; return 0; }
    stop_our_dockerd
  fi
  start_dockerd
  # dockerd (re)creates DOCKER-USER on start; make sure the guard is still first.
  "${REPO_ROOT}/scripts/egress-guard.sh" install 2>/dev/null
  "${REPO_ROOT}/scripts/egress-guard.sh" check || die "egress guard missing after dockerd started"
}

main "$@"
