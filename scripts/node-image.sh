#!/usr/bin/env bash
# node-image.sh [--print|--components]: ensure a kind node image for the pinned Kubernetes version
# and print its name on stdout. --print only prints it. --components only compiles its Go
# components (scripts/build-components.sh), and only when the local image will be built and no
# Docker engine is installed yet to hold one: scripts/e2e.sh starts that before host setup on a
# fresh machine, so the long pole of a cold run does not wait for the engine's install; the build
# that follows waits for it (a lock) and finds the binaries.
#
# Which image (STAMPEDE_NODE_IMAGE_SOURCE, default auto):
#   STAMPEDE_NODE_IMAGE=name  use that image as it is (nothing is built or checked);
#   stock                     kind's published image for K8S_VERSION (pulled by kind when absent);
#   local                     the image assembled here from Debian packages and pinned Go modules;
#   auto                      stock if it is already present or the registry's name resolves (an
#                             online host), else local. Only a DNS lookup is made, no connection.
# The local image is tagged stampede/node:<k8s version>-<hash of its inputs>: it is rebuilt only
# when a version or a build script changes, and reused otherwise.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=node-image
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "${REPO_ROOT}/scripts/images.sh"

print_only="" components_only=""
case "${1:-}" in
  --print) print_only=1 ;;
  --components) components_only=1 ;;
  "") ;;
  *) die "usage: node-image.sh [--print|--components] (got '$1')" ;;
esac

NODE_INPUTS=("${REPO_ROOT}/scripts/versions.sh" "${REPO_ROOT}/scripts/node-image.sh" "${REPO_ROOT}/scripts/images.sh"
  "${REPO_ROOT}/scripts/build-components.sh" "${REPO_ROOT}/scripts/node" "${REPO_ROOT}/e2e/cluster/cnid")
LOCAL_NODE_IMAGE="stampede/node:${K8S_VERSION}-$(hash_inputs "${NODE_INPUTS[@]}")"

choose() {
  if [ -n "${STAMPEDE_NODE_IMAGE:-}" ]; then echo "given"; return; fi
  case "${STAMPEDE_NODE_IMAGE_SOURCE:-auto}" in
    stock) echo stock ;;
    local) echo local ;;
    auto)
      if image_present "$KIND_STOCK_NODE_IMAGE" ||
        timeout 3 getent hosts registry-1.docker.io >/dev/null 2>&1; then echo stock; else echo local; fi ;;
    *) die "STAMPEDE_NODE_IMAGE_SOURCE must be auto, stock or local (got '${STAMPEDE_NODE_IMAGE_SOURCE}')" ;;
  esac
}

BIN="${STAMPEDE_CACHE}/bin"

component_images() {
  # The names kubeadm will ask the node's containerd for.
  local want img name
  want=$("${BIN}/kubeadm-${K8S_VERSION}" config images list --kubernetes-version "${K8S_VERSION}") ||
    die "kubeadm config images list failed"
  for img in $want; do
    name=${img%:*}
    case "$name" in
      */kube-apiserver|*/kube-controller-manager|*/kube-scheduler)
        scratch_image "$img" "[\"/usr/local/bin/${name##*/}\"]" "${BIN}/${name##*/}-${K8S_VERSION}=${name##*/}" ;;
      */kube-proxy)
        proxy_image "$img" ;;
      */etcd)
        [ "${img##*:}" = "$ETCD_IMAGE_TAG" ] || die "kubeadm wants ${img}, versions.sh pins etcd ${ETCD_IMAGE_TAG}: update it"
        scratch_image "$img" '["/usr/local/bin/etcd"]' "${BIN}/etcd-${ETCD_VERSION}=etcd" "${BIN}/etcdctl-${ETCD_VERSION}=etcdctl" ;;
      */coredns)
        [ "${img##*:}" = "$COREDNS_VERSION" ] || die "kubeadm wants ${img}, versions.sh pins CoreDNS ${COREDNS_VERSION}: update it"
        scratch_image "$img" '["/usr/local/bin/coredns"]' "${BIN}/coredns-${COREDNS_VERSION}-slim=coredns" ;;
      */pause)
        [ "${img##*:}" = "$PAUSE_IMAGE_TAG" ] || die "kubeadm wants ${img}, versions.sh pins pause ${PAUSE_IMAGE_TAG}: update it"
        scratch_image "$img" '["/usr/local/bin/pause"]' "${BIN}/pause-${K8S_VERSION}=pause" ;;
      *) die "kubeadm wants an image this script cannot build: ${img}" ;;
    esac
    echo "$img"
  done
}

SLIM_IMAGE=""
proxy_image() {
  local img=$1 ctx
  image_present "$img" && return 0
  ctx=$(mktemp -d)
  cp "${BIN}/kube-proxy-${K8S_VERSION}" "${ctx}/kube-proxy"
  printf 'FROM %s\nCOPY kube-proxy /usr/local/bin/kube-proxy\nENTRYPOINT ["/usr/local/bin/kube-proxy"]\n' "$SLIM_IMAGE" >"${ctx}/Dockerfile"
  build_dockerfile "$img" "$ctx"; rm -rf "$ctx"; log "built ${img}"
}

CNID_IMAGE="stampede/cnid:$(hash_inputs "${REPO_ROOT}/e2e/cluster/cnid" "${REPO_ROOT}/scripts/node" "${REPO_ROOT}/scripts/versions.sh")"
LPP_IMAGE="stampede/local-path-provisioner:${LOCAL_PATH_PROVISIONER_VERSION}"
LPP_HELPER_IMAGE="stampede/local-path-helper:${LOCAL_PATH_PROVISIONER_VERSION}"

# cnid's binary, named by the hash of its inputs; build_cnid compiles it when it is missing. It is
# built at the start, beside the components, not after them: compiled last it was 2.5 min on a
# cold build's critical path (its own client-go, at this module's versions and flags).
CNID_BIN="${BIN}/cnid-${CNID_IMAGE##*:}"
build_cnid() {
  [ -x "$CNID_BIN" ] && return 0
  (cd "$REPO_ROOT" && go_build build -ldflags "-s -w" -o "${CNID_BIN}.tmp" ./e2e/cluster/cnid) ||
    die "go build cnid failed"
  mv "${CNID_BIN}.tmp" "$CNID_BIN"
  log "built cnid"
}

addon_images() {
  local ctx
  if ! image_present "$CNID_IMAGE"; then
    build_cnid
    ctx=$(mktemp -d)
    cp "$CNID_BIN" "${ctx}/cnid"
    printf 'FROM %s\nCOPY cnid /usr/local/bin/cnid\nENTRYPOINT ["/usr/local/bin/cnid"]\n' "$SLIM_IMAGE" >"${ctx}/Dockerfile"
    build_dockerfile "$CNID_IMAGE" "$ctx"; rm -rf "$ctx"; log "built ${CNID_IMAGE}"
  fi
  scratch_image "$LPP_IMAGE" '["/usr/local/bin/local-path-provisioner"]' \
    "${BIN}/local-path-provisioner-${LOCAL_PATH_PROVISIONER_VERSION}=local-path-provisioner"
  if ! image_present "$LPP_HELPER_IMAGE"; then
    docker tag "$SLIM_IMAGE" "$LPP_HELPER_IMAGE"
  fi
  printf '%s\n' "$CNID_IMAGE" "$LPP_IMAGE" "$LPP_HELPER_IMAGE"
}

# node_base: the Debian rootfs for nodes, finished with what `docker import` cannot set.
node_base() {
  local base=$1 raw="${1}-rootfs" ctx
  image_present "$base" && return 0
  KIND_SRC=$(go mod download -json "sigs.k8s.io/kind@${KIND_VERSION}" | jq -r .Dir)
  export KIND_SRC PAUSE_IMAGE="registry.k8s.io/pause:${PAUSE_IMAGE_TAG}"
  rootfs_image "$raw" "systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins" \
    "${REPO_ROOT}/scripts/node/customize-base.sh"
  ctx=$(mktemp -d)
  printf 'FROM %s\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\n' "$raw" >"${ctx}/Dockerfile"
  build_dockerfile "$base" "$ctx"; rm -rf "$ctx"
  docker rmi "$raw" >/dev/null
  log "built ${base}"
}

# assemble BASE IMAGE...: kind's node image build (pkg/build/nodeimage) without the pulls.
assemble() {
  local base=$1; shift
  local id="stampede-node-build-$$"
  docker rm -f "$id" >/dev/null 2>&1 || true
  docker run -d --name "$id" --network none --entrypoint=sleep --security-opt seccomp=unconfined "$base" infinity >/dev/null
  trap 'docker rm -f "'"$id"'" >/dev/null 2>&1 || true' EXIT
  local b
  for b in kubeadm kubelet kubectl; do docker cp "${BIN}/${b}-${K8S_VERSION}" "${id}:/usr/bin/${b}"; done
  docker cp "${BIN}/crictl-${CRICTL_VERSION}" "${id}:/usr/local/bin/crictl"
  docker exec "$id" bash -c "chown root:root /usr/bin/kube* /usr/local/bin/crictl && chmod 0755 /usr/bin/kube* /usr/local/bin/crictl"
  docker exec -i "$id" bash -c 'mkdir -p /kind/manifests && cat >/kind/version' <<<"${K8S_VERSION}"
  sed "s#@CNID_IMAGE@#${CNID_IMAGE}#g" "${REPO_ROOT}/scripts/node/cni.yaml" |
    docker exec -i "$id" bash -c 'cat >/kind/manifests/default-cni.yaml'
  sed -e "s#@LPP_IMAGE@#${LPP_IMAGE}#g" -e "s#@LPP_HELPER_IMAGE@#${LPP_HELPER_IMAGE}#g" "${REPO_ROOT}/scripts/node/storage.yaml" |
    docker exec -i "$id" bash -c 'cat >/kind/manifests/default-storage.yaml'
  docker exec "$id" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
  retry_until 30 "containerd in the build container" docker exec "$id" ctr version || die "containerd did not start in ${id}"
  local img
  for img in "$@"; do
    docker save "$img" | docker exec -i "$id" ctr --namespace=k8s.io images import \
      --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - >/dev/null ||
      die "importing ${img} into the node image failed"
  done
  log "imported $# images: $(docker exec "$id" ctr --namespace=k8s.io images list -q | grep -vc '^sha256:') names"
  docker exec "$id" bash -c 'kill $(pidof containerd) && while pidof containerd >/dev/null; do sleep 0.2; done; rm -f /tmp/containerd.log'
  docker commit \
    --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
    "$id" "$LOCAL_NODE_IMAGE" >/dev/null
  docker rm -f "$id" >/dev/null
  trap - EXIT
}

# prune_old_node_images: earlier local node images are 1.2 GB each; drop those no container uses.
# STAMPEDE_NODE_IMAGE_PRUNE=false keeps them: on an engine shared by several worktrees, another
# one's image is not old, just not started yet.
prune_old_node_images() {
  [ "${STAMPEDE_NODE_IMAGE_PRUNE:-true}" = true ] || return 0
  local img
  for img in $(docker images --format '{{.Repository}}:{{.Tag}}' stampede/node); do
    [ "$img" = "$LOCAL_NODE_IMAGE" ] && continue
    if [ -z "$(docker ps -aq --filter "ancestor=${img}")" ]; then
      docker rmi "$img" >/dev/null 2>&1 && log "removed the older ${img}"
    fi
  done
  return 0
}

main() {
  local src
  src=$(choose)
  case "$src" in
    given) echo "$STAMPEDE_NODE_IMAGE"; return ;;
    stock) echo "$KIND_STOCK_NODE_IMAGE"; return ;;
  esac
  if [ -n "$components_only" ]; then
    # With an engine installed, the image may exist already: the build after host setup decides.
    command -v dockerd >/dev/null 2>&1 && return 0
    mkdir -p "$BIN"
    exec "${REPO_ROOT}/scripts/build-components.sh" "$BIN" go
  fi
  if [ -n "$print_only" ] || image_present "$LOCAL_NODE_IMAGE"; then echo "$LOCAL_NODE_IMAGE"; return; fi
  docker_ok || die "no Docker engine answers: run scripts/host-setup.sh (make host-setup)"
  local start=$SECONDS
  log "building ${LOCAL_NODE_IMAGE} (cold: 10 to 25 minutes on 2 cores, compiling Kubernetes; logs in ${STAMPEDE_CACHE}/logs)"
  mkdir -p "${STAMPEDE_CACHE}/logs"
  local base_hash slim_hash
  base_hash=$(hash_inputs "${REPO_ROOT}/scripts/versions.sh" "${REPO_ROOT}/scripts/node/customize-base.sh" "${REPO_ROOT}/scripts/images.sh")
  slim_hash=$(hash_inputs "${REPO_ROOT}/scripts/node/customize-slim.sh" "${REPO_ROOT}/scripts/node/iptables-wrapper" "${REPO_ROOT}/scripts/images.sh")
  local base="stampede/node-base:${base_hash}"
  SLIM_IMAGE="stampede/slim:${slim_hash}"

  # components_progress: how far the one go build of every component is (build-components.sh).
  components_progress() {
    local f="${STAMPEDE_CACHE}/logs/components-packages.log" total
    total=$(sed -n '1s/^packages //p' "$f" 2>/dev/null)
    if [ -z "$total" ]; then echo "fetching modules"; else echo "compiled $(($(wc -l <"$f") - 1)) of ${total} packages"; fi
  }
  # Go builds are the critical path; the root filesystems are built beside them.
  "${REPO_ROOT}/scripts/build-components.sh" "$BIN" >"${STAMPEDE_CACHE}/logs/components.log" 2>&1 &
  local comp=$!
  ( node_base "$base" ) >"${STAMPEDE_CACHE}/logs/node-base.log" 2>&1 &
  local basep=$!
  ( rootfs_image "$SLIM_IMAGE" "iptables,nftables,conntrack,ipset,iproute2,ca-certificates" \
      "${REPO_ROOT}/scripts/node/customize-slim.sh" ) >"${STAMPEDE_CACHE}/logs/slim.log" 2>&1 &
  local slimp=$!
  local cnidp=""
  if ! image_present "$CNID_IMAGE"; then
    mkdir -p "$BIN"
    ( build_cnid ) >"${STAMPEDE_CACHE}/logs/cnid.log" 2>&1 &
    cnidp=$!
  fi
  # A line every 30 s with what is still building: a cold build is long, and silence looks hung.
  ( while sleep 30; do
      still=""
      kill -0 "$comp" 2>/dev/null && still+=" components ($(components_progress))"
      kill -0 "$basep" 2>/dev/null && still+=" node-base rootfs"
      kill -0 "$slimp" 2>/dev/null && still+=" slim rootfs"
      [ -n "$cnidp" ] && kill -0 "$cnidp" 2>/dev/null && still+=" cnid"
      [ -n "$still" ] || break
      log "still building:${still} ($((SECONDS - start))s)"
    done ) &
  local ticker=$!
  local failed=""
  wait "$slimp" || { tail -n 20 "${STAMPEDE_CACHE}/logs/slim.log" >&2; failed+=" slim-rootfs"; }
  wait "$basep" || { tail -n 20 "${STAMPEDE_CACHE}/logs/node-base.log" >&2; failed+=" node-base"; }
  if [ -n "$cnidp" ]; then wait "$cnidp" || { tail -n 20 "${STAMPEDE_CACHE}/logs/cnid.log" >&2; failed+=" cnid"; }; fi
  log "root filesystems ready ($((SECONDS - start))s); waiting for Go builds"
  wait "$comp" || { tail -n 20 "${STAMPEDE_CACHE}/logs/components.log" >&2; failed+=" components"; }
  kill "$ticker" 2>/dev/null || true
  [ -z "$failed" ] || die "failed:${failed} (logs in ${STAMPEDE_CACHE}/logs)"
  grep 'fetched\|\] built\|ready in' "${STAMPEDE_CACHE}/logs/components.log" >&2 || true
  log "components ready ($((SECONDS - start))s)"

  local images
  images=$(component_images; addon_images)
  # shellcheck disable=SC2086
  assemble "$base" $images
  log "built ${LOCAL_NODE_IMAGE} in $((SECONDS - start))s ($(docker image inspect -f '{{.Size}}' "$LOCAL_NODE_IMAGE" | numfmt --to=iec))"
  prune_old_node_images
  echo "$LOCAL_NODE_IMAGE"
}

main
