#!/usr/bin/env bash
# build-components.sh OUTDIR: build every binary the offline node image needs from pinned Go
# modules, with CGO off, into OUTDIR (kept between runs: a binary whose name and version already
# exist there is not rebuilt). Go's module and build caches are kept too, so a warm run is quick.
#
# A cold build is compile-bound on a small machine, so the order is what makes it short:
#   1. every module's source, and every module its build needs (go list -deps of exactly the
#      packages built, not go mod tidy's whole graph), is fetched at once, in parallel: the waits
#      on the module proxy overlap each other (and, in node-image.sh, the root filesystems);
#   2. two build lanes run side by side, so that one's serial phases (a link, a cgo-free but
#      single-threaded package) leave no core idle:
#        kubernetes: the seven commands in one `go build` invocation, so each shared package is
#                    compiled once and the seven links run beside the compiles;
#        others:     etcd, etcdctl and crictl (their own module sets), then CoreDNS and the
#                    local-path provisioner.
# Every binary is stripped (-s -w: no symbol table, no DWARF; nothing here debugs them).
# The compilers run with GOGC=STAMPEDE_BUILD_GOGC (default 400): the Go compiler spends a large
# share of its time collecting garbage, and this build has memory to spare.
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
export GOGC="${STAMPEDE_BUILD_GOGC:-400}"
WORK="${STAMPEDE_CACHE}/src"
mkdir -p "$WORK"

K8S_CMDS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)

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

# fetch DIR PKG...: download every module that building PKG in DIR needs (and record their sums).
fetch() {
  local dir=$1 start=$SECONDS; shift
  (cd "$dir" && go list -deps "$@" >/dev/null) || die "fetching the modules of ${dir##*/} ($*) failed: is the Go module proxy reachable?"
  log "fetched the modules of ${dir##*/} in $((SECONDS - start))s"
}

k8s_todo() {
  local c
  for c in "${K8S_CMDS[@]}"; do built "${c}-${K8S_VERSION}" || echo "$c"; done
}

prepare_kubernetes() {
  [ -n "$(k8s_todo)" ] || return 0
  local src v0
  src=$(module_src "k8s.io/kubernetes@${K8S_VERSION}")
  v0="v0.${K8S_VERSION#v1.}"
  sed -i -E "s#=> \./staging/src/(k8s\.io/[^ ]+)#=> \1 ${v0}#" "${src}/go.mod"
  local c pkgs=()
  for c in "${K8S_CMDS[@]}"; do pkgs+=("./cmd/${c}"); done
  fetch "$src" "${pkgs[@]}"
}

prepare_etcd() {
  local m src
  for m in server etcdctl; do
    src=$(module_src "go.etcd.io/etcd/${m}/v3@${ETCD_VERSION}")
    # The module's replaces point at sibling directories that a module zip does not have.
    sed -i -E '/=> \.\.\//d' "${src}/go.mod"
    fetch "$src" .
  done
}

# prepare_module MODULE@VERSION PKG: the source of a module built from its own go.mod.
prepare_module() { fetch "$(module_src "$1")" "$2"; }

build_kubernetes() {
  local todo
  mapfile -t todo < <(k8s_todo)
  [ ${#todo[@]} -eq 0 ] && return 0
  local src pkg=k8s.io/client-go/pkg/version base=k8s.io/component-base/version ld p c
  src=$(module_src "k8s.io/kubernetes@${K8S_VERSION}")
  ld="-s -w"
  for p in "$pkg" "$base"; do
    ld+=" -X ${p}.gitVersion=${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=$(cut -d. -f2 <<<"${K8S_VERSION}")"
    ld+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=1970-01-01T00:00:00Z"
  done
  local tmp pkgs=()
  tmp=$(mktemp -d "${OUT}/.k8s.XXXXXX")
  for c in "${todo[@]}"; do pkgs+=("./cmd/${c}"); done
  # One invocation: with -o DIR, go build writes each main package's binary there, compiling the
  # packages they share once.
  (cd "$src" && timed "kubernetes (${todo[*]})" go build -trimpath -ldflags "$ld" -o "${tmp}/" "${pkgs[@]}")
  for c in "${todo[@]}"; do mv "${tmp}/${c}" "${OUT}/${c}-${K8S_VERSION}"; done
  rmdir "$tmp"
}

build_etcd() {
  built "etcd-${ETCD_VERSION}" && built "etcdctl-${ETCD_VERSION}" && return 0
  local src
  src=$(module_src "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
  (cd "$src" && timed etcd go build -trimpath -ldflags "-s -w" -o "${OUT}/etcd-${ETCD_VERSION}" .)
  src=$(module_src "go.etcd.io/etcd/etcdctl/v3@${ETCD_VERSION}")
  (cd "$src" && timed etcdctl go build -trimpath -ldflags "-s -w" -o "${OUT}/etcdctl-${ETCD_VERSION}" .)
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

COREDNS="coredns-${COREDNS_VERSION}-slim" COREDNS_MOD="github.com/coredns/coredns@${COREDNS_VERSION}"
CRICTL="crictl-${CRICTL_VERSION}" CRICTL_MOD="sigs.k8s.io/cri-tools@${CRICTL_VERSION}"
LPP="local-path-provisioner-${LOCAL_PATH_PROVISIONER_VERSION}"
LPP_MOD="github.com/rancher/local-path-provisioner@${LOCAL_PATH_PROVISIONER_VERSION}"

# together NAME:FUNCTION...: run the functions at once; fail naming every one that failed.
together() {
  local pids=() names=() i failed=""
  for i in "$@"; do
    "${i#*:}" &
    pids+=($!); names+=("${i%%:*}")
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=" ${names[$i]}"; done
  [ -z "$failed" ] || die "failed:${failed}"
}

# CoreDNS's plugins are chosen at compile time (plugin.cfg, generated into core/). The plugins
# with the heaviest dependencies, which no kind cluster's Corefile uses (cloud DNS backends and
# their SDKs, etcd, gRPC, dnstap, tracing, GeoIP), are left out: a third fewer packages to build
# (go list -deps: 1277 -> 913). kubeadm's Corefile (errors, health, ready, kubernetes, prometheus,
# forward, cache, loop, reload, loadbalance) and every other plugin stay.
COREDNS_DROPPED_PLUGINS="geoip|trace|dnstap|route53|azure|clouddns|etcd|grpc"
prepare_coredns() {
  local src
  src=$(module_src "$COREDNS_MOD")
  sed -i -E "/^(${COREDNS_DROPPED_PLUGINS}):/d" "${src}/plugin.cfg"
  (cd "$src" && go run directives_generate.go) || die "generating CoreDNS's plugin list failed"
  fetch "$src" .
}
fetch_coredns() { built "$COREDNS" || prepare_coredns; }
fetch_crictl() { built "$CRICTL" || prepare_module "$CRICTL_MOD" ./cmd/crictl; }
fetch_lpp() { built "$LPP" || prepare_module "$LPP_MOD" .; }
fetch_etcd() { { built "etcd-${ETCD_VERSION}" && built "etcdctl-${ETCD_VERSION}"; } || prepare_etcd; }

lane_others() {
  build_etcd
  build_module "$CRICTL" "$CRICTL_MOD" ./cmd/crictl
  build_module "$COREDNS" "$COREDNS_MOD" .
  build_module "$LPP" "$LPP_MOD" .
}

start=$SECONDS
build_pause
together kubernetes:prepare_kubernetes etcd:fetch_etcd coredns:fetch_coredns crictl:fetch_crictl local-path-provisioner:fetch_lpp
log "every module fetched in $((SECONDS - start))s"
together kubernetes:build_kubernetes others:lane_others
log "all components ready in $((SECONDS - start))s (${OUT})"
