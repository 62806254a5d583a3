#!/usr/bin/env bash
# build-image.sh [--print] NAME...: build the images the suite deploys, without a registry, and
# print each one's reference on stdout as NAME=IMAGE (logs go to stderr).
#
# NAME is tokensvc, tokensvc-selftest, postgres, toxiproxy, attacker or all (all but tokensvc-selftest
# and attacker, which the suite builds when it needs them). Every
# tag is a hash of the image's inputs, so an image that is already present is not rebuilt. --print
# only prints the references.
#
#   tokensvc   stampede/tokensvc:<hash>   service/Dockerfile around a static build of ./service/cmd/tokensvc
#   tokensvc-selftest   stampede/tokensvc-selftest:<hash>   the same, built with -tags selftest: the
#                                         deliberately broken variants TOKENSVC_MUTANT selects
#                                         (service/mutants); not in all, never deployed but by make selftest
#   postgres   stampede/postgres:<hash>   Debian's postgresql-15 on a minbase rootfs, entrypoint
#                                         scripts/images/postgres-entrypoint.sh, uid 999
#   toxiproxy  stampede/toxiproxy:<version>-<hash>   the toxiproxy server at go.mod's version, FROM scratch
#   attacker   stampede/attacker:<hash>   ./e2e/cmd/stampede-attacker, FROM scratch, uid 65532: traffic
#                                         from inside the cluster (-e2e.traffic=cluster)
set -o errexit -o nounset -o pipefail
LOG_PREFIX=build-image
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "${REPO_ROOT}/scripts/images.sh"

IMAGES_DIR="${REPO_ROOT}/scripts/images"
ALL=(tokensvc postgres toxiproxy)

image_ref() {
  local r=$REPO_ROOT
  case "$1" in
    tokensvc) echo "stampede/tokensvc:$(hash_inputs "${r}/service" "${r}/internal" "${r}/go.mod" "${r}/go.sum")" ;;
    # The same inputs: the build tag is all that differs, and the name tells the images apart.
    tokensvc-selftest) echo "stampede/tokensvc-selftest:$(hash_inputs "${r}/service" "${r}/internal" "${r}/go.mod" "${r}/go.sum")" ;;
    postgres) echo "stampede/postgres:$(hash_inputs "${IMAGES_DIR}/postgres-entrypoint.sh" \
      "${IMAGES_DIR}/postgres-rootfs.sh" "${r}/scripts/versions.sh" "${r}/scripts/images.sh" "${r}/scripts/build-image.sh")" ;;
    # go.mod and go.sum pick the versions of toxiproxy's own dependencies.
    toxiproxy) echo "stampede/toxiproxy:${TOXIPROXY_VERSION}-$(hash_inputs "${r}/go.mod" "${r}/go.sum" "${r}/scripts/versions.sh")" ;;
    # The packages the command is built from (go list -deps ./e2e/cmd/stampede-attacker, in this
    # module), and this script, which writes its Dockerfile.
    attacker) echo "stampede/attacker:$(hash_inputs "${r}/e2e/cmd/stampede-attacker" "${r}/e2e/attack" "${r}/e2e/traffic" "${r}/e2e/request" \
      "${r}/e2e/history" "${r}/internal" "${r}/go.mod" "${r}/go.sum" "${r}/scripts/build-image.sh")" ;;
    *) die "unknown image '$1' (want tokensvc, tokensvc-selftest, postgres, toxiproxy, attacker or all)" ;;
  esac
}

# go_static OUT PACKAGE [LDFLAGS [TAGS]]: a static, reproducible build of PACKAGE in this module,
# with the comma-separated build tags TAGS.
go_static() {
  (cd "$REPO_ROOT" && go_build build -tags "${4:-}" -ldflags "-s -w ${3:-}" -o "$1" "$2") ||
    die "go build $2 failed"
}

# tokensvc_image IMAGE [TAGS]: service/Dockerfile around tokensvc built with TAGS.
tokensvc_image() {
  local image=$1 ctx
  ctx=$(mktemp -d)
  go_static "${ctx}/tokensvc" ./service/cmd/tokensvc "" "${2:-}"
  cp "${REPO_ROOT}/service/Dockerfile" "${ctx}/Dockerfile"
  build_dockerfile "$image" "$ctx"
  rm -rf "$ctx"
}

build_tokensvc() { tokensvc_image "$1"; }

build_tokensvc_selftest() { tokensvc_image "$1" selftest; }

build_postgres() {
  local image=$1 raw="${1}-rootfs" ctx
  # curl is nearly free next to PostgreSQL's own libraries and lets a spec or a person probe the
  # services from inside the cluster (the tokensvc image has no shell).
  rootfs_image "$raw" "postgresql-15,curl,ca-certificates" "${IMAGES_DIR}/postgres-rootfs.sh"
  ctx=$(mktemp -d)
  cp "${IMAGES_DIR}/postgres-entrypoint.sh" "${ctx}/postgres-entrypoint"
  cat >"${ctx}/Dockerfile" <<DOCKERFILE
FROM ${raw}
COPY postgres-entrypoint /usr/local/bin/postgres-entrypoint
# The socket directory (Debian's compiled-in default; mmdebstrap leaves /run empty) and the
# volume's mount point, so that the image also runs without a volume.
RUN install -d -o 999 -g 999 -m 2775 /run/postgresql && \
    install -d -o 999 -g 999 -m 0755 /var/lib/postgresql/data /usr/share/stampede-postgres
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data/pgdata \
    STAMPEDE_PGDATA_TEMPLATE=/usr/share/stampede-postgres/pgdata
USER 999:999
# The cluster a pod copies instead of running initdb (postgres-entrypoint --template).
RUN postgres-entrypoint --template "\$STAMPEDE_PGDATA_TEMPLATE"
WORKDIR /var/lib/postgresql
EXPOSE 5432
# Fast shutdown: SIGTERM (smart) would wait for every pooled client connection to go away.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
DOCKERFILE
  build_dockerfile "$image" "$ctx"
  rm -rf "$ctx"
  docker rmi "$raw" >/dev/null
}

build_toxiproxy() {
  local image=$1 dir bin have
  have=$(cd "$REPO_ROOT" && go list -m -f '{{.Version}}' github.com/Shopify/toxiproxy/v2) ||
    die "go.mod does not require github.com/Shopify/toxiproxy/v2"
  [ "$have" = "$TOXIPROXY_VERSION" ] ||
    die "go.mod has toxiproxy ${have}, versions.sh pins ${TOXIPROXY_VERSION}: make them agree"
  dir=$(mktemp -d)
  bin="${dir}/toxiproxy"
  go_static "$bin" github.com/Shopify/toxiproxy/v2/cmd/server \
    "-X github.com/Shopify/toxiproxy/v2.Version=${TOXIPROXY_VERSION}"
  # -host: the default, localhost, would be unreachable from other pods.
  scratch_image "$image" '["/usr/local/bin/toxiproxy", "-host", "0.0.0.0"]' "$bin"
  rm -rf "$dir"
}

build_attacker() {
  local image=$1 dir ctx
  dir=$(mktemp -d)
  go_static "${dir}/stampede-attacker" ./e2e/cmd/stampede-attacker
  ctx=$(mktemp -d)
  cp "${dir}/stampede-attacker" "${ctx}/stampede-attacker"
  # A numeric non-root user, so that runAsNonRoot can verify it without a passwd file.
  cat >"${ctx}/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY stampede-attacker /usr/local/bin/stampede-attacker
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/stampede-attacker"]
DOCKERFILE
  build_dockerfile "$image" "$ctx"
  rm -rf "$dir" "$ctx"
}

main() {
  local print_only="" names=() n
  [ "${1:-}" = "--print" ] && { print_only=1; shift; }
  [ $# -gt 0 ] || die "usage: build-image.sh [--print] tokensvc|tokensvc-selftest|postgres|toxiproxy|attacker|all..."
  for n in "$@"; do
    if [ "$n" = all ]; then names+=("${ALL[@]}"); else names+=("$n"); fi
  done
  local image start
  for n in "${names[@]}"; do
    image=$(image_ref "$n")
    if [ -z "$print_only" ] && ! image_present "$image"; then
      docker_ok || die "no Docker engine answers: run scripts/host-setup.sh (make host-setup)"
      start=$SECONDS
      log "building ${image}"
      "build_${n//-/_}" "$image"
      log "built ${image} in $((SECONDS - start))s ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec))"
    fi
    echo "${n}=${image}"
  done
}

main "$@"
