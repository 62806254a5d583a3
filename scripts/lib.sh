# shellcheck shell=bash
# Common helpers for stampede's scripts. Source it; do not run it.
# Every script sets: set -o errexit -o nounset -o pipefail, and REPO_ROOT from BASH_SOURCE.

REPO_ROOT="${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export REPO_ROOT
# shellcheck source=versions.sh
source "${REPO_ROOT}/scripts/versions.sh"

# STAMPEDE_CACHE holds build outputs that are safe to keep between runs (binaries, rootfs tarballs),
# each under a name that includes a hash of its inputs.
STAMPEDE_CACHE="${STAMPEDE_CACHE:-/var/cache/stampede}"
export STAMPEDE_CACHE

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

# apt_install PKG...: install Debian packages as root without starting any service from their
# postinst scripts (dockerd must first get the egress guard; the tests start their own PostgreSQL).
apt_install() {
  if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    die "missing $*: install them (Debian: apt-get install $*) or run this as root"
  fi
  log "installing $* with apt"
  local policy=/usr/sbin/policy-rc.d created=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
  [ -n "$created" ] && rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install $* failed: check that Debian's archive is reachable"
}
