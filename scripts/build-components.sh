#!/usr/bin/env bash
# build-components.sh OUTDIR: build every binary the offline node image needs from pinned Go
# modules, with CGO off, into OUTDIR (kept between runs: a binary whose name and version already
# exist there is not rebuilt). Go's module and build caches are kept too, so a warm run is quick.
#
# Kubernetes: the k8s.io/kubernetes module zip has no staging/ and no vendor/, so the module source
# is copied to a writable dir and every ./staging/src/k8s.io/X replace is pointed at the published
# k8s.io/X of the matching v0 version.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=components
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT="${1:?usage: $0 OUTDIR}"
mkdir -p "$OUT"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off
WORK="${STAMPEDE_CACHE}/src"
mkdir -p "$WORK"

# module_src MODULE@VERSION: a writable copy of a module's source; prints its path.
module_src() {
  local mv=$1 dir
  dir=$(go mod download -json "$mv" | jq -r .Dir)
  [ -d "$dir" ] || die "go mod download ${mv} failed: is the Go module proxy reachable?"
  local dst="${WORK}/${mv//\//_}"
  if [ ! -f "${dst}/.copied" ]; then
    rm -rf "$dst"; cp -r "$dir" "$dst"; chmod -R u+w "$dst"; touch "${dst}/.copied"
  fi
  echo "$dst"
}

# built NAME: the binary is already in OUT (names carry their version).
built() { [ -x "${OUT}/$1" ]; }

timed() {
  local name=$1 start=$SECONDS; shift
  "$@" || die "building ${name} failed"
  log "built ${name} in $((SECONDS - start))s"
}

build_kubernetes() {
  local cmds=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy) c todo=()
  for c in "${cmds[@]}"; do built "${c}-${K8S_VERSION}" || todo+=("$c"); done
  [ ${#todo[@]} -eq 0 ] && return 0
  local src v0
  src=$(module_src "k8s.io/kubernetes@${K8S_VERSION}")
  v0="v0.${K8S_VERSION#v1.}"
  (
    cd "$src"
    if grep -q '=> ./staging/' go.mod; then
      sed -i -E "s#=> \./staging/src/(k8s\.io/[^ ]+)#=> \1 ${v0}#" go.mod
      go mod tidy >/dev/null 2>&1 || go mod download
    fi
    local pkg=k8s.io/client-go/pkg/version base=k8s.io/component-base/version ld
    ld="-s -w"
    for p in "$pkg" "$base"; do
      ld+=" -X ${p}.gitVersion=${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=$(cut -d. -f2 <<<"${K8S_VERSION}")"
      ld+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=1970-01-01T00:00:00Z"
    done
    for c in "${todo[@]}"; do
      timed "$c" go build -trimpath -ldflags "$ld" -o "${OUT}/${c}-${K8S_VERSION}" "./cmd/${c}"
    done
  )
}

build_etcd() {
  built "etcd-${ETCD_VERSION}" && built "etcdctl-${ETCD_VERSION}" && return 0
  local ver=${ETCD_VERSION} src
  src=$(module_src "go.etcd.io/etcd/server/v3@${ver}")
  (
    cd "$src"
    # The module's replaces point at sibling directories that a module zip does not have.
    sed -i -E '/=> \.\.\//d' go.mod
    go mod tidy >/dev/null 2>&1 || true
    timed etcd go build -trimpath -ldflags "-s -w" -o "${OUT}/etcd-${ver}" .
  )
  src=$(module_src "go.etcd.io/etcd/etcdctl/v3@${ver}")
  (
    cd "$src"
    sed -i -E '/=> \.\.\//d' go.mod
    go mod tidy >/dev/null 2>&1 || true
    timed etcdctl go build -trimpath -ldflags "-s -w" -o "${OUT}/etcdctl-${ver}" .
  )
}

# build_module NAME MODULE@VERSION PKG: go build a package of a module from its own go.mod.
build_module() {
  local name=$1 mv=$2 pkg=$3 src
  built "$name" && return 0
  src=$(module_src "$mv")
  ( cd "$src" && timed "$name" go build -trimpath -ldflags "-s -w" -o "${OUT}/${name}" "$pkg" )
}

build_pause() {
  built "pause-${K8S_VERSION}" && return 0
  local src
  src=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | jq -r .Dir)
  need_cmd gcc "install it: apt-get install gcc libc6-dev"
  timed pause gcc -Os -static -o "${OUT}/pause-${K8S_VERSION}" "${src}/build/pause/linux/pause.c"
}

start=$SECONDS
build_pause
build_module "kind-${KIND_VERSION}" "sigs.k8s.io/kind@${KIND_VERSION}" .
build_module "crictl-${CRICTL_VERSION}" "sigs.k8s.io/cri-tools@${CRICTL_VERSION}" ./cmd/crictl
build_kubernetes
build_etcd
build_module "coredns-${COREDNS_VERSION}" "github.com/coredns/coredns@${COREDNS_VERSION}" .
build_module "local-path-provisioner-${LOCAL_PATH_PROVISIONER_VERSION}" \
  "github.com/rancher/local-path-provisioner@${LOCAL_PATH_PROVISIONER_VERSION}" .
log "all components ready in $((SECONDS - start))s (${OUT})"
