# shellcheck shell=bash
# Common helpers for stampede's scripts. Source it; do not run it.
# Every script sets: set -o errexit -o nounset -o pipefail, and REPO_ROOT from BASH_SOURCE.

REPO_ROOT="${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export REPO_ROOT
# shellcheck source=versions.sh
source "${REPO_ROOT}/scripts/versions.sh"

# STAMPEDE_CACHE holds build outputs that are safe to keep between runs (binaries, rootfs tarballs),
# each under a name that includes a hash of its inputs. It is the user's own cache, root or not.
STAMPEDE_CACHE="${STAMPEDE_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/stampede}"
export STAMPEDE_CACHE

# The Docker engine that stampede starts when none runs (scripts/host-setup.sh): its own config
# file, data root, exec root and socket, so that the system's Docker configuration is never edited.
# STAMPEDE_STATE holds what host setup added (engine state, the runtime wrapper, the record that
# scripts/host-undo.sh reads); STAMPEDE_RUN holds the socket and pid file.
STAMPEDE_STATE="${STAMPEDE_STATE:-/var/lib/stampede}"
STAMPEDE_RUN="${STAMPEDE_RUN:-/run/stampede}"
STAMPEDE_DOCKER_SOCK="${STAMPEDE_RUN}/docker.sock"
export STAMPEDE_STATE STAMPEDE_RUN

# stampede's engine is used when it runs and nobody named another one with DOCKER_HOST; the Go
# tools (kind, the suite) find it the same way (e2e/cluster/engine.go).
if [ -z "${DOCKER_HOST:-}" ] && [ -S "$STAMPEDE_DOCKER_SOCK" ]; then
  export DOCKER_HOST="unix://${STAMPEDE_DOCKER_SOCK}"
fi

# go_build SUBCOMMAND ARGS...: `go build|test|run` with the one flag set of every Go build a run
# makes (the node image's components, cnid, the images' binaries, the tools, the suite): static
# (CGO off), trimmed paths, no DWARF. Go's build cache keys a package by its flags too, so with
# one set the packages these builds share (the standard library, client-go, gRPC, ...) are
# compiled once on a cold machine, not once per set (go build std alone is about 45 CPU-s here).
# The compilers run with GOGC=STAMPEDE_BUILD_GOGC (default 400): they spend much of their time
# collecting garbage, and the build has memory to spare (go build std: 122 -> 96 CPU-s). Neither
# is exported: every Go program a run starts would read them.
go_build() {
  local sub=$1; shift
  CGO_ENABLED=0 GOGC="${STAMPEDE_BUILD_GOGC:-400}" go "$sub" -trimpath -gcflags=all=-dwarf=false "$@"
}

_ts() { date -u +%H:%M:%S; }
log() { printf '%s [%s] %s\n' "$(_ts)" "${LOG_PREFIX:-stampede}" "$*" >&2; }
die() { printf '%s [%s] ERROR: %s\n' "$(_ts)" "${LOG_PREFIX:-stampede}" "$*" >&2; exit 1; }

# need_cmd CMD HINT: fail with one line saying what to do when CMD is missing.
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }

is_root() { [ "$(id -u)" = 0 ]; }

# retry_until TIMEOUT_SECONDS DESCRIPTION CMD...: poll CMD every 0.5 s until it succeeds or the
# deadline passes. A wait on a condition, not a sleep standing in for one.
retry_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { log "timed out after ${timeout}s waiting for ${what}"; return 1; }
    sleep 0.5
  done
}

# hash_inputs FILE|DIR...: a short content hash of files (names and bytes), for image tags.
hash_inputs() {
  local f
  for f in "$@"; do
    if [ -d "$f" ]; then find "$f" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    else sha256sum "$f"; fi
  done | sed "s#${REPO_ROOT}/##" | sha256sum | cut -c1-12
}

# docker_ok: the Docker engine answers.
docker_ok() { docker info >/dev/null 2>&1; }

# image_present IMAGE: the image exists in the local engine.
image_present() { docker image inspect "$1" >/dev/null 2>&1; }

# apt_install PKG...: install Debian packages as root, in one apt transaction, without starting any
# service from their postinst scripts (dockerd must first get the egress guard; the tests start
# their own PostgreSQL). stampede's installs take turns (a lock): the temporary policy-rc.d is
# created and removed by the holder alone, so one install cannot remove it under another's feet.
apt_install() {
  if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    die "missing $*: install them (Debian: apt-get install $*) or run this as root"
  fi
  log "installing with apt: $*"
  # A subshell with a trap: an interrupted or failed apt run never leaves policy-rc.d behind.
  (
    mkdir -p /run/lock
    exec 8>"${STAMPEDE_APT_LOCK:-/run/lock/stampede-apt.lock}"
    flock -n 8 || { log "waiting for another stampede apt install to end"; flock 8; }
    policy=/usr/sbin/policy-rc.d
    # A policy-rc.d with stampede's mark was left by an install that was killed outright; any
    # other one is the administrator's and stays.
    if [ ! -e "$policy" ] || grep -qxF "$POLICY_MARK" "$policy"; then
      trap 'rm -f "$policy"' EXIT
      trap 'exit 130' INT TERM HUP
      printf '#!/bin/sh\n%s\nexit 101\n' "$POLICY_MARK" >"$policy"; chmod +x "$policy"
    fi
    # Lock::Timeout: wait for another apt or dpkg on this host instead of failing at once.
    apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
  ) || die "apt-get install $* failed: check that Debian's archive is reachable"
}
POLICY_MARK="# stampede: no service starts while stampede installs packages"

# host_lock: hold the host lock until this script exits, so that host setups and undos of
# parallel runs take turns. Processes that outlive the script (dockerd) must not inherit fd 9.
HOST_LOCK="${STAMPEDE_HOST_LOCK:-/run/lock/stampede-host.lock}"
host_lock() {
  mkdir -p "$(dirname "$HOST_LOCK")"
  exec 9>"$HOST_LOCK"
  flock -n 9 && return 0
  log "waiting for another host setup or undo to end (lock ${HOST_LOCK})"
  flock -w "${STAMPEDE_HOST_LOCK_WAIT:-900}" 9 || die "another host setup or undo has held ${HOST_LOCK} for ${STAMPEDE_HOST_LOCK_WAIT:-900}s: see which with 'fuser ${HOST_LOCK}'"
}

# ensure_shellcheck: shellcheck on PATH, from Debian's package when missing (scripts/lint-shell.sh
# and scripts/lint-workflows.sh use it; neither may skip for want of it).
ensure_shellcheck() {
  command -v shellcheck >/dev/null 2>&1 && return 0
  apt_install shellcheck
  command -v shellcheck >/dev/null 2>&1 || die "shellcheck installed but not on PATH (PATH=${PATH})"
}

# What host setup changed on this machine, one line each, so that scripts/host-undo.sh can take
# back exactly that (STAMPEDE_STATE/host-changes).
HOST_CHANGES="${STAMPEDE_STATE}/host-changes"
record() { mkdir -p "$STAMPEDE_STATE"; grep -qxF -- "$1" "$HOST_CHANGES" 2>/dev/null || printf '%s\n' "$1" >>"$HOST_CHANGES"; }
recorded() { grep -qxF -- "$1" "$HOST_CHANGES" 2>/dev/null; }
unrecord() {
  [ -f "$HOST_CHANGES" ] || return 0
  # A temporary file of its own beside the record: two unrecords never write the same one.
  local tmp
  tmp=$(mktemp "${HOST_CHANGES}.XXXXXX")
  grep -vxF -- "$1" "$HOST_CHANGES" >"$tmp" || true
  mv "$tmp" "$HOST_CHANGES"
}

# The system's Docker units, which docker.io's package enables at boot: while stampede's own engine
# runs they are disabled and masked (a system dockerd would start with a default bridge the guard
# does not cover, and host setup would then adopt it); host-undo puts their entries under
# SYSTEMD_ETC back as they were, from a tar host setup made before its first change.
SYSTEMD_ETC=/etc/systemd/system
DOCKER_UNITS=(docker.service docker.socket containerd.service)
# shellcheck disable=SC2034 # host-setup.sh and host-undo.sh use it
UNITS_BEFORE="${STAMPEDE_STATE}/systemd-before.tar"

# unit_entries: the paths, relative to SYSTEMD_ETC, that enable or mask one of DOCKER_UNITS.
unit_entries() {
  local u f
  for u in "${DOCKER_UNITS[@]}"; do
    for f in "${SYSTEMD_ETC}/${u}" "${SYSTEMD_ETC}"/*.wants/"${u}" "${SYSTEMD_ETC}"/*.requires/"${u}"; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\n' "${f#"${SYSTEMD_ETC}"/}"; fi
    done
  done
}

# systemd_reload: make a running systemd read its units again (nothing to do without one).
systemd_reload() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 || return 0
  systemctl daemon-reload
}

# iptables_state v4|v6: the host's rules as iptables-save prints them, without its comment lines
# and with counters zeroed, so that two states compare byte for byte.
iptables_state() {
  local save=iptables-save
  [ "$1" = v6 ] && save=ip6tables-save
  command -v "$save" >/dev/null 2>&1 || return 0
  "$save" 2>/dev/null | sed -e '/^#/d' -e 's/\[[0-9]*:[0-9]*\]/[0:0]/'
}
