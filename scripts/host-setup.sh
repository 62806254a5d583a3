#!/usr/bin/env bash
# host-setup.sh: make this host ready to run stampede's kind clusters, offline if need be.
# Idempotent, quick when already done, and undone by scripts/host-undo.sh (make host-undo).
#
# What it changes, and only that (besides raising the inotify limits, which several kind
# clusters at once need):
#   1. packages: those of docker.io, jq, mmdebstrap, gcc, libc6-dev, iptables, nftables and
#      ca-certificates that are missing, in one apt transaction (as root), with no service started
#      by their install;
#   2. the egress guard (scripts/egress-guard.sh): rules that match only stampede's own Docker
#      network (what it forwards elsewhere, and new connections to this host), in place before any
#      of its containers starts; without root it cannot be checked, and host setup stops unless
#      STAMPEDE_NO_GUARD=1 says to run unguarded;
#   3. a Docker engine: one that already runs (DOCKER_HOST, or the system's) is used as it is and
#      nothing of its configuration changes. Otherwise stampede starts its own dockerd, with its
#      own config file, data root, exec root and socket under STAMPEDE_STATE and STAMPEDE_RUN
#      (scripts reach it through DOCKER_HOST): the system's /etc/docker is never edited. Its
#      config has a loopback DNS, no default bridge, and, where this host's capability bounding set
#      is incomplete, a runtime wrapper that drops the missing capabilities (privileged containers,
#      kind's nodes, fail otherwise). The system's Docker units (docker.service, docker.socket,
#      containerd.service) are then disabled and masked, so that no system dockerd starts beside it.
#      A new config is applied by restarting the engine only when it runs no container: other
#      runs' clusters are never killed for it.
# Setups and undos take turns (a lock, /run/lock/stampede-host.lock). Everything it adds is
# written down in STAMPEDE_STATE/host-changes, with snapshots of iptables, ip_forward and the
# units' entries taken before its first change, for host-undo.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=host-setup
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONFIG="${STAMPEDE_STATE}/daemon.json"
WRAPPER="${STAMPEDE_STATE}/bin/runc-capwrap"
DOCKERD_PID="${STAMPEDE_RUN}/dockerd.pid"
DOCKERD_LOG="${STAMPEDE_STATE}/dockerd.log"
OUR_HOST="unix://${STAMPEDE_DOCKER_SOCK}"

# ensure_packages: every package host setup needs that is missing, in one apt transaction.
ensure_packages() {
  local missing=() why=()
  command -v dockerd >/dev/null 2>&1 || { missing+=(docker.io); why+=("docker.io (the engine kind's nodes run in)"); }
  command -v jq >/dev/null 2>&1 || { missing+=(jq); why+=("jq (the engine's config)"); }
  command -v mmdebstrap >/dev/null 2>&1 || { missing+=(mmdebstrap); why+=("mmdebstrap (the node image's root filesystems)"); }
  # gcc prints the bare name of a file it cannot find: without libc6-dev's libc.a there is no static link.
  if ! command -v gcc >/dev/null 2>&1 || [ "$(gcc -print-file-name=libc.a)" = libc.a ]; then
    missing+=(gcc libc6-dev); why+=("gcc and libc6-dev (the node image's pause, a static C program)")
  fi
  command -v iptables >/dev/null 2>&1 || { missing+=(iptables); why+=("iptables (the egress guard)"); }
  command -v nft >/dev/null 2>&1 || { missing+=(nftables); why+=("nftables (host-undo deletes tables it created)"); }
  ! command -v dpkg-query >/dev/null 2>&1 || dpkg-query -W -f='${Status}' ca-certificates 2>/dev/null | grep -q 'ok installed' ||
    { missing+=(ca-certificates); why+=("ca-certificates (the Go module proxy's TLS)"); }
  [ ${#missing[@]} -eq 0 ] && return 0
  local list
  list=$(printf '%s; ' "${why[@]}")
  log "missing, to install in one apt transaction: ${list%; }"
  apt_install "${missing[@]}"
  record "installed-packages ${missing[*]}"
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

# snapshot: the host's state before host setup's first change, for host-undo and its test.
snapshot() {
  [ -f "${STAMPEDE_STATE}/iptables-before.v4" ] && return 0
  mkdir -p "$STAMPEDE_STATE"
  iptables_state v4 >"${STAMPEDE_STATE}/iptables-before.v4"
  iptables_state v6 >"${STAMPEDE_STATE}/iptables-before.v6"
  cat /proc/sys/net/ipv4/ip_forward >"${STAMPEDE_STATE}/ip_forward-before"
}

# snapshot_units: the entries that enable or mask the system's Docker units, as they are before
# host setup installs docker.io or masks anything (a tar, so that undo restores links and files
# exactly).
snapshot_units() {
  [ -f "$UNITS_BEFORE" ] && return 0
  mkdir -p "$STAMPEDE_STATE"
  local entries=()
  [ -d "$SYSTEMD_ETC" ] && mapfile -t entries < <(unit_entries)
  tar -C "${SYSTEMD_ETC}" -cf "${UNITS_BEFORE}.tmp" -T /dev/null ${entries[@]+"${entries[@]}"}
  mv "${UNITS_BEFORE}.tmp" "$UNITS_BEFORE"
}

# mask_units: disable and mask those of DOCKER_UNITS that a package installed, with or without a
# running systemd: the same links `systemctl disable` removes and `systemctl mask` makes.
mask_units() {
  local u dir f masked=()
  for u in "${DOCKER_UNITS[@]}"; do
    [ -e "/lib/systemd/system/${u}" ] || [ -e "/usr/lib/systemd/system/${u}" ] || continue
    [ "$(readlink "${SYSTEMD_ETC}/${u}" 2>/dev/null)" = /dev/null ] && continue
    for f in "${SYSTEMD_ETC}"/*.wants/"${u}" "${SYSTEMD_ETC}"/*.requires/"${u}"; do
      if [ -L "$f" ] || [ -e "$f" ]; then rm -f "$f"; fi
    done
    # A unit file of the administrator's here is in the snapshot: undo puts it back.
    dir=${SYSTEMD_ETC}; mkdir -p "$dir"
    rm -f "${dir:?}/${u}"
    ln -s /dev/null "${dir}/${u}"
    masked+=("$u")
  done
  [ ${#masked[@]} -eq 0 ] && return 0
  record "masked-units"
  systemd_reload
  log "disabled and masked ${masked[*]}: no system dockerd may start beside stampede's (host-undo restores them)"
}

# raise_inotify: kind's nodes share the host kernel's inotify limits, and a few clusters exceed
# Debian's defaults (kube-proxy crash-loops with "too many open files"). Raised to what kind's
# documentation asks for, only when lower, and the value before is recorded for host-undo.
raise_inotify() {
  local name want cur
  for name in fs.inotify.max_user_instances=512 fs.inotify.max_user_watches=524288; do
    want=${name#*=}; name=${name%=*}
    cur=$(sysctl -n "$name" 2>/dev/null) || continue
    [ "$cur" -ge "$want" ] && continue
    record "sysctl ${name}=${cur}"
    sysctl -q -w "${name}=${want}" && log "raised ${name} from ${cur} to ${want} (several kind clusters at once)"
  done
}

# desired_config: the config file of stampede's own engine.
desired_config() {
  local group=""
  getent group docker >/dev/null 2>&1 && group=docker
  # deprecated-key-path: dockerd 20.10 otherwise writes its trust key to /etc/docker/key.json.
  jq -n --arg data "${STAMPEDE_STATE}/docker" --arg exec "${STAMPEDE_RUN}/exec" \
    --arg pid "$DOCKERD_PID" --arg host "$OUR_HOST" --arg group "$group" --arg key "${STAMPEDE_STATE}/key.json" '{
      "data-root": $data, "exec-root": $exec, "pidfile": $pid, "hosts": [$host], "deprecated-key-path": $key,
      "dns": ["127.0.0.1"], "bridge": "none",
      "containerd-namespace": "stampede", "containerd-plugins-namespace": "stampede-plugins"
    } + (if $group != "" then {group: $group} else {} end)' |
    if caps_incomplete; then
      jq --arg w "$WRAPPER" '.runtimes["stampede-runc"] = {path: $w} | ."default-runtime" = "stampede-runc"'
    else cat; fi
}

# desired_wrapper: the runtime wrapper's text, or nothing where the bounding set is complete.
desired_wrapper() {
  caps_incomplete || return 0
  local runc
  runc=$(command -v runc || echo /usr/sbin/runc)
  sed "s#@REAL_RUNC@#${runc}#" "${REPO_ROOT}/scripts/runc-capwrap"
}

# config_changed: the engine's config or wrapper on disk differ from what they should be.
config_changed() {
  local wrapper
  wrapper=$(desired_wrapper)
  [ -z "$wrapper" ] || [ "$(cat "$WRAPPER" 2>/dev/null)" = "$wrapper" ] || return 0
  [ -s "$CONFIG" ] && [ "$(jq -S . "$CONFIG")" = "$(desired_config | jq -S .)" ] && return 1
  return 0
}

# configure: write the engine's config and the wrapper.
configure() {
  mkdir -p "$STAMPEDE_STATE" "$STAMPEDE_RUN"
  local wrapper
  wrapper=$(desired_wrapper)
  if [ -n "$wrapper" ] && [ "$(cat "$WRAPPER" 2>/dev/null)" != "$wrapper" ]; then
    mkdir -p "$(dirname "$WRAPPER")"
    printf '%s\n' "$wrapper" >"$WRAPPER"; chmod 0755 "$WRAPPER"
    log "installed the runtime wrapper ${WRAPPER}: this host's capability bounding set is incomplete ($(awk '/^CapBnd:/{print $2}' /proc/self/status))"
  fi
  local want
  want=$(desired_config)
  if ! [ -s "$CONFIG" ] || [ "$(jq -S . "$CONFIG")" != "$(jq -S . <<<"$want")" ]; then
    printf '%s\n' "$want" >"$CONFIG"
    log "wrote ${CONFIG}"
  fi
}

our_dockerd_pid() {
  local pid
  [ -s "$DOCKERD_PID" ] || return 1
  pid=$(cat "$DOCKERD_PID")
  [ -r "/proc/${pid}/comm" ] && [ "$(cat "/proc/${pid}/comm")" = dockerd ] && echo "$pid"
}

our_engine_answers() { DOCKER_HOST="$OUR_HOST" docker info >/dev/null 2>&1; }

stop_our_dockerd() {
  local pid
  pid=$(our_dockerd_pid) || return 0
  log "stopping stampede's dockerd (pid ${pid}) to apply new settings"
  kill "$pid"
  retry_until 60 "dockerd ${pid} to exit" bash -c "! kill -0 ${pid}" || die "dockerd ${pid} did not exit; stop it and re-run"
}

start_dockerd() {
  log "starting stampede's dockerd (config ${CONFIG}, log ${DOCKERD_LOG})"
  record "started-engine"
  # setsid: the engine outlives this script and is not killed with its process group. 9>&-: it
  # must not hold the host lock for as long as it runs.
  setsid dockerd --config-file "$CONFIG" >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
  local pid=$!
  # The wait ends early when dockerd exits; either way the engine must answer now.
  if ! retry_until 60 "dockerd to answer" bash -c "kill -0 ${pid} 2>/dev/null || exit 0; DOCKER_HOST='${OUR_HOST}' docker info" ||
    ! our_engine_answers; then
    tail -n 20 "$DOCKERD_LOG" >&2
    die "dockerd did not start: see ${DOCKERD_LOG}"
  fi
  log "dockerd ready (pid $(cat "$DOCKERD_PID"), DOCKER_HOST=${OUR_HOST})"
}

# guard: install the egress guard as root. Without root it can be neither installed nor read
# (unless sudo needs no password): fail closed, unless STAMPEDE_NO_GUARD=1 says to run without.
guard() {
  if is_root; then
    need_cmd iptables "the egress guard needs it: apt-get install iptables, or run 'sudo make host-setup'"
    "${REPO_ROOT}/scripts/egress-guard.sh" install
    "${REPO_ROOT}/scripts/egress-guard.sh" check || die "egress guard missing after setup"
  elif sudo -n "${REPO_ROOT}/scripts/egress-guard.sh" check >/dev/null 2>&1; then
    log "the egress guard is in place (checked with sudo)"
  elif [ "${STAMPEDE_NO_GUARD:-}" = 1 ]; then
    log "STAMPEDE_NO_GUARD=1: running without a checked egress guard; nothing stops a container from reaching the network"
  else
    die "not root, and the egress guard cannot be checked: run 'sudo make host-setup' once (or set STAMPEDE_NO_GUARD=1 to run unguarded)"
  fi
}

# engine_busy: stampede's engine runs containers (other runs' kind nodes): prints how many.
engine_busy() {
  local n
  n=$(DOCKER_HOST="$OUR_HOST" docker ps -q 2>/dev/null | wc -l)
  [ "$n" -gt 0 ] && echo "$n"
}

main() {
  # Only root changes anything here; parallel runs' setups and undos take turns.
  if is_root; then host_lock; fi
  # Someone else's engine (DOCKER_HOST, a laptop's Docker Desktop, a CI service): used as it is.
  if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "$OUR_HOST" ]; then
    docker_ok || die "DOCKER_HOST=${DOCKER_HOST} does not answer: start that engine or unset DOCKER_HOST"
    is_root && { snapshot; raise_inotify; }
    guard; log "using the Docker engine at DOCKER_HOST=${DOCKER_HOST}"; return 0
  fi
  if our_engine_answers && ! is_root; then
    guard; log "using stampede's dockerd (DOCKER_HOST=${OUR_HOST})"; return 0
  fi
  if ! our_engine_answers && DOCKER_HOST="" docker info >/dev/null 2>&1; then
    is_root && { snapshot; raise_inotify; }
    guard; log "using the running Docker engine"; return 0
  fi
  is_root || die "no Docker engine answers and starting one needs root: start Docker (and join the docker group), or run 'sudo make host-setup'"
  snapshot_units
  ensure_packages
  snapshot
  guard
  raise_inotify
  mask_units
  if our_engine_answers; then
    config_changed || { log "stampede's dockerd already running (DOCKER_HOST=${OUR_HOST})"; return 0; }
    local busy
    if busy=$(engine_busy); then
      # Restarting would kill other runs' clusters: they keep the engine as it is.
      log "stampede's dockerd runs ${busy} containers (other runs' clusters): its new config waits until none runs; using it as it is"
      return 0
    fi
    configure
    stop_our_dockerd
  else
    configure
  fi
  start_dockerd
  guard
}

main "$@"
