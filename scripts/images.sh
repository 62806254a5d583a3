# shellcheck shell=bash
# Building container images without a registry: nothing here pulls. Sourced by node-image.sh and
# build-image.sh after lib.sh.
#
# Two kinds of image:
#   - static Go (or C) binaries FROM scratch (docker build, the legacy builder: no base to pull);
#   - Debian root filesystems made with mmdebstrap and `docker import`ed, then finished with a small
#     `docker build` on top (import cannot set STOPSIGNAL or USER).
# Every tag carries a hash of the image's inputs, so an image is rebuilt only when they change.

# The legacy builder: BuildKit would try to resolve `FROM scratch`-adjacent metadata and needs buildx.
export DOCKER_BUILDKIT=0

DEBIAN_MIRROR="${STAMPEDE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${STAMPEDE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

# build_dockerfile IMAGE CONTEXT_DIR: docker build CONTEXT_DIR (its Dockerfile) as IMAGE, quietly.
build_dockerfile() {
  local image=$1 ctx=$2 out
  if ! out=$(docker build --network none -q -t "$image" "$ctx" 2>&1); then
    printf '%s\n' "$out" >&2
    die "docker build ${image} failed"
  fi
}

# scratch_image IMAGE ENTRYPOINT_JSON FILE...: an image FROM scratch holding FILEs under
# /usr/local/bin (PATH is set, so a pod's `command: [name]` finds them).
scratch_image() {
  local image=$1 entry=$2; shift 2
  image_present "$image" && return 0
  local ctx f
  ctx=$(mktemp -d)
  for f in "$@"; do cp "${f%%=*}" "${ctx}/$(basename "${f#*=}")"; done
  {
    echo "FROM scratch"
    for f in "$@"; do echo "COPY $(basename "${f#*=}") /usr/local/bin/$(basename "${f#*=}")"; done
    echo "ENV PATH=/usr/local/bin:/usr/bin:/bin"
    echo "ENTRYPOINT ${entry}"
  } >"${ctx}/Dockerfile"
  build_dockerfile "$image" "$ctx"
  rm -rf "$ctx"
  log "built ${image}"
}

# rootfs_image IMAGE INCLUDE_PACKAGES [CUSTOMIZE_HOOK]: a Debian minbase root filesystem with the
# given packages (comma-separated), docker-imported as IMAGE. The tarball is cached by a hash of
# its inputs under STAMPEDE_CACHE/rootfs.
rootfs_image() {
  local image=$1 pkgs=$2 hook=${3:-}
  image_present "$image" && return 0
  need_cmd mmdebstrap "install it: apt-get install mmdebstrap (scripts/host-setup.sh does)"
  local key tar
  key=$(printf '%s|%s|%s' "$DEBIAN_SUITE" "$pkgs" "$(cat "${hook:-/dev/null}" 2>/dev/null)" | sha256sum | cut -c1-12)
  tar="${STAMPEDE_CACHE}/rootfs/${key}.tar"
  mkdir -p "$(dirname "$tar")"
  if [ ! -s "$tar" ]; then
    local start=$SECONDS args=()
    [ -n "$hook" ] && args+=(--customize-hook="$hook \"\$1\"")
    log "mmdebstrap ${image}: ${pkgs}"
    # Downloaded .debs are kept between builds (a failed customization does not download again).
    local debs="${STAMPEDE_CACHE}/apt-archives"
    mkdir -p "$debs"
    # shellcheck disable=SC2016 # "$1" in the hooks is mmdebstrap's: they run in a shell of its own
    mmdebstrap --quiet --format=tar --variant=minbase --include="$pkgs" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --skip=essential/unlink \
      --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
      --setup-hook="sync-in ${debs} /var/cache/apt/archives/" \
      --customize-hook="sync-out /var/cache/apt/archives ${debs}" \
      --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
      "${args[@]}" \
      "$DEBIAN_SUITE" "${tar}.tmp" \
      "deb ${DEBIAN_MIRROR} ${DEBIAN_SUITE} main" \
      "deb ${DEBIAN_MIRROR} ${DEBIAN_SUITE}-updates main" \
      "deb ${DEBIAN_SECURITY_MIRROR} ${DEBIAN_SUITE}-security main" >&2 ||
      die "mmdebstrap ${image} failed: is Debian's archive (${DEBIAN_MIRROR}) reachable?"
    mv "${tar}.tmp" "$tar"
    log "rootfs ${image} in $((SECONDS - start))s ($(du -h "$tar" | cut -f1))"
  fi
  docker import "$tar" "$image" >/dev/null || die "docker import ${image} failed"
}
