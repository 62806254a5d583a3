#!/usr/bin/env bash
# node-image-archive.sh save|load FILE: carry the local kind node image to another machine or a CI
# cache, so that it need not be built there (make node-image-save / make node-image-load).
#   save FILE  docker save of this checkout's node image (scripts/node-image.sh builds it when
#              missing), gzip-compressed, into FILE, and its SHA-256 into FILE.sha256;
#   load FILE  checks FILE against FILE.sha256, loads it, and says whether it is the image this
#              checkout would build (same inputs: make e2e then skips the build) or another one.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=node-image-archive
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage="usage: $0 save|load FILE (make node-image-save FILE=... / make node-image-load FILE=...)"
if [ $# -ne 2 ] || [ -z "$2" ]; then die "$usage"; fi
cmd=$1 file=$2
need_cmd sha256sum "install coreutils"
docker_ok || die "no Docker engine answers: run scripts/host-setup.sh (make host-setup)"

# The node image this checkout builds offline (its tag is a hash of its inputs).
want=$(STAMPEDE_NODE_IMAGE_SOURCE=local "${REPO_ROOT}/scripts/node-image.sh" --print)

gz() { if command -v pigz >/dev/null 2>&1; then pigz "$@"; else gzip "$@"; fi; }

save() {
  local img
  img=$(STAMPEDE_NODE_IMAGE_SOURCE=local "${REPO_ROOT}/scripts/node-image.sh")
  [ "$img" = "$want" ] || die "node-image.sh made ${img}, expected ${want}"
  mkdir -p "$(dirname "$file")"
  log "saving ${img} to ${file}"
  # Written beside the target and renamed: a failed save leaves no half tarball under FILE.
  docker save "$img" | gz -1 >"${file}.tmp" || { rm -f "${file}.tmp"; die "docker save ${img} failed"; }
  mv "${file}.tmp" "$file"
  (cd "$(dirname "$file")" && sha256sum "$(basename "$file")") >"${file}.sha256"
  log "saved ${img}: ${file} ($(du -h "$file" | cut -f1)), sha256 $(cut -c1-16 "${file}.sha256")..."
}

load() {
  [ -f "$file" ] || die "${file}: no such file (make node-image-save FILE=... writes one)"
  [ -f "${file}.sha256" ] || die "${file}.sha256 is missing: without it the tarball cannot be checked; save it again"
  # The hash file names the tarball by its base name, as save wrote it.
  local name sum
  read -r sum name <"${file}.sha256"
  [ "$name" = "$(basename "$file")" ] || die "${file}.sha256 is for ${name}, not $(basename "$file")"
  [ "$(sha256sum <"$file" | cut -d' ' -f1)" = "$sum" ] ||
    die "${file} does not match ${file}.sha256: the tarball is corrupt or was changed; save it again"
  local out img
  out=$(gz -dc "$file" | docker load) || die "docker load of ${file} failed"
  img=$(sed -n 's/^Loaded image: //p' <<<"$out" | tail -n 1)
  [ -n "$img" ] || die "docker load of ${file} named no image: ${out}"
  if [ "$img" = "$want" ]; then
    log "loaded ${img}: the node image of this checkout, make e2e will use it without a build"
  else
    log "loaded ${img}, but this checkout's inputs make ${want}: make e2e would build that one;" \
      "STAMPEDE_NODE_IMAGE=${img} uses the loaded one as it is"
  fi
  echo "$img"
}

case "$cmd" in
  save) save ;;
  load) load ;;
  *) die "$usage" ;;
esac
