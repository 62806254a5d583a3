#!/usr/bin/env bash
# build-components.sh OUTDIR [go]: build every binary the offline node image needs from pinned Go
# modules, with CGO off, into OUTDIR (kept between runs: a binary whose name and version already
# exist there is not rebuilt). Go's module and build caches are kept too, so a warm run is quick.
# With `go`, only the Go components, not pause (a static C build, which needs gcc and libc6-dev
# from host setup): scripts/e2e.sh starts that before host setup on a machine that has no engine
# yet. Builds take turns (a lock): a second one waits for the first, then finds its binaries.
#
# A cold build is compile-bound on a small machine: the fewer packages compiled, the shorter it is.
# So every component is built from ONE module graph with ONE `go build`:
#   - the Kubernetes module's source is the main module (its ./staging replaces pointed at the
#     published k8s.io/X of the matching v0 version), and it requires etcd, etcdctl, crictl,
#     CoreDNS and the local-path provisioner besides. Minimal version selection gives every
#     package one version, so the client-go, gRPC, protobuf, Prometheus... that the components
#     share are compiled once, not once per component at its own versions (go list -deps:
#     2887 packages besides the standard library, where building each from its own go.mod
#     compiled about 4700);
#   - one `go build -o DIR/ PKG...` of the twelve commands schedules every compile and link on
#     both cores, with nothing waiting on another build;
#   - every module is fetched first, at once (go list -deps of exactly the packages built, not
#     go mod tidy's whole graph), while node-image.sh builds the root filesystems.
# Binaries are stripped (-s -w) and compiled without DWARF (-dwarf=false: the compiler's share of
# generating it, about a sixth of the CPU time, is spent for nothing that reads it). The compilers
# run with GOGC=STAMPEDE_BUILD_GOGC (default 400): they spend a large share of their time
# collecting garbage, and this build has memory to spare.
#
# Two components are built from a patched copy of their source (a local replace):
#   CoreDNS     without the plugins no kind Corefile uses whose dependencies dominate its build,
#               and without a struct field client-go 0.34 no longer has (set to its zero value);
#   local-path  its v0.0.30 source imports logrus as github.com/Sirupsen/logrus, which in one build
#               with the lower-case path everything else uses is an import collision.
# The components were released against older versions of some shared modules (CoreDNS against
# client-go 0.32, the provisioner 0.30); each compiles against Kubernetes' own, and the node image
# runs them in every cluster the suite creates (the smoke and e2e specs are their test).
set -o errexit -o nounset -o pipefail
LOG_PREFIX=components
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT="${1:?usage: $0 OUTDIR [go]}"
MODE="${2:-all}"
case "$MODE" in all|go) ;; *) die "usage: $0 OUTDIR [go] (got '${MODE}')" ;; esac
mkdir -p "$OUT"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off
export GOGC="${STAMPEDE_BUILD_GOGC:-400}"
WORK="${STAMPEDE_CACHE}/src"
mkdir -p "$WORK"

K8S_CMDS=(kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
COREDNS_MOD="github.com/coredns/coredns@${COREDNS_VERSION}"
LPP_MOD="github.com/rancher/local-path-provisioner@${LOCAL_PATH_PROVISIONER_VERSION}"
# Each command: the name of its binary in OUT, the package that go build builds, and the name go
# build gives its binary (the package path's last element, without a /vN suffix).
COMPONENTS=()
for c in "${K8S_CMDS[@]}"; do COMPONENTS+=("${c}-${K8S_VERSION} ./cmd/${c} ${c}"); done
COMPONENTS+=(
  "etcd-${ETCD_VERSION} go.etcd.io/etcd/server/v3 server"
  "etcdctl-${ETCD_VERSION} go.etcd.io/etcd/etcdctl/v3 etcdctl"
  "crictl-${CRICTL_VERSION} sigs.k8s.io/cri-tools/cmd/crictl crictl"
  "coredns-${COREDNS_VERSION}-slim github.com/coredns/coredns coredns"
  "local-path-provisioner-${LOCAL_PATH_PROVISIONER_VERSION} github.com/rancher/local-path-provisioner local-path-provisioner"
)
# The packages' count and the ones compiled so far, for node-image.sh's heartbeat.
PROGRESS="${STAMPEDE_CACHE}/logs/components-packages.log"

# mod_dir MODULE@VERSION: the module's directory in the module cache (downloaded when missing).
# Not jq: this runs before host setup, which installs it.
mod_dir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'; }

# module_src MODULE@VERSION [NAME]: a writable copy of a module's source (under NAME, default the
# module's own); prints its path.
module_src() {
  local mv=$1 dir
  dir=$(mod_dir "$mv")
  [ -d "$dir" ] || die "go mod download ${mv} failed: is the Go module proxy reachable?"
  local dst="${WORK}/${2:-${mv//\//_}}"
  if [ ! -f "${dst}/.copied" ]; then
    rm -rf "$dst"; cp -r "$dir" "$dst"; chmod -R u+w "$dst"; touch "${dst}/.copied"
  fi
  echo "$dst"
}

# built NAME: the binary is already in OUT (names carry their version).
built() { [ -x "${OUT}/$1" ]; }

todo() {
  local c
  for c in "${COMPONENTS[@]}"; do built "${c%% *}" || echo "$c"; done
}

build_pause() {
  built "pause-${K8S_VERSION}" && return 0
  local src start=$SECONDS
  src=$(mod_dir "k8s.io/kubernetes@${K8S_VERSION}")
  need_cmd gcc "install it: apt-get install gcc libc6-dev"
  gcc -Os -static -o "${OUT}/pause-${K8S_VERSION}" "${src}/build/pause/linux/pause.c" || die "building pause failed"
  log "built pause in $((SECONDS - start))s"
}

# CoreDNS's plugins are chosen at compile time (plugin.cfg, generated into core/). The plugins
# with the heaviest dependencies, which no kind cluster's Corefile uses (cloud DNS backends and
# their SDKs, etcd, gRPC, dnstap, tracing, GeoIP), are left out. kubeadm's Corefile (errors,
# health, ready, kubernetes, prometheus, forward, cache, loop, reload, loadbalance) and every
# other plugin stay.
COREDNS_DROPPED_PLUGINS="geoip|trace|dnstap|route53|azure|clouddns|etcd|grpc"
coredns_src() {
  local src
  src=$(module_src "$COREDNS_MOD" "coredns-${COREDNS_VERSION}-slim")
  if [ ! -f "${src}/.slim" ]; then
    sed -i -E "/^(${COREDNS_DROPPED_PLUGINS}):/d" "${src}/plugin.cfg"
    (cd "$src" && go run directives_generate.go) || die "generating CoreDNS's plugin list failed"
    # client-go 0.34 dropped cache.Config's RetryOnError; CoreDNS sets it to its zero value, so the
    # line goes and nothing changes (CoreDNS's later releases did the same).
    sed -i '/^[[:space:]]*RetryOnError:[[:space:]]*false,$/d' "${src}/plugin/kubernetes/object/informer.go"
    touch "${src}/.slim"
  fi
  echo "$src"
}
lpp_src() {
  local src
  src=$(module_src "$LPP_MOD" "local-path-provisioner-${LOCAL_PATH_PROVISIONER_VERSION}-logrus")
  if [ ! -f "${src}/.logrus" ]; then
    grep -rl --include='*.go' 'github.com/Sirupsen/logrus' "$src" | xargs -r sed -i 's#github.com/Sirupsen/logrus#github.com/sirupsen/logrus#'
    touch "${src}/.logrus"
  fi
  echo "$src"
}

# union_src: the main module every component is built from (see the top); prints its path.
union_src() {
  local src v0 coredns lpp
  src=$(module_src "k8s.io/kubernetes@${K8S_VERSION}" "components-${K8S_VERSION}")
  coredns=$(coredns_src) lpp=$(lpp_src)
  if [ ! -f "${src}/.union" ]; then
    v0="v0.${K8S_VERSION#v1.}"
    sed -i -E "s#=> \./staging/src/(k8s\.io/[^ ]+)#=> \1 ${v0}#" "${src}/go.mod"
    (cd "$src" && go mod edit \
      -require="go.etcd.io/etcd/server/v3@${ETCD_VERSION}" -require="go.etcd.io/etcd/etcdctl/v3@${ETCD_VERSION}" \
      -require="sigs.k8s.io/cri-tools@${CRICTL_VERSION}" \
      -require="${COREDNS_MOD}" -replace="${COREDNS_MOD%@*}=${coredns}" \
      -require="${LPP_MOD}" -replace="${LPP_MOD%@*}=${lpp}") || die "writing the components' go.mod failed"
    touch "${src}/.union"
  fi
  echo "$src"
}

main() {
  local start=$SECONDS src pending pkgs=() c pkg
  # Beside the binaries it guards, not among the cluster locks that stampede-cluster gc removes
  # when no process holds them.
  exec 7>"${OUT}/.build.lock"
  flock -n 7 || { log "waiting for another build of the components to end"; flock 7; }
  [ "$MODE" = go ] || build_pause
  mapfile -t pending < <(todo)
  if [ ${#pending[@]} -eq 0 ]; then log "all components ready in $((SECONDS - start))s (${OUT})"; return 0; fi
  for c in "${pending[@]}"; do read -r _ pkg _ <<<"$c"; pkgs+=("$pkg"); done
  mkdir -p "$(dirname "$PROGRESS")"
  echo "fetching" >"$PROGRESS"
  # The standard library needs no module: it compiles (into Go's build cache, with the flags of
  # the build below) while the modules download, instead of after them.
  go build -trimpath -gcflags=all=-dwarf=false std 2>/dev/null &
  local std=$!
  src=$(union_src)

  # Every module the build needs, fetched at once (the waits on the proxy overlap), and the number
  # of packages to compile, for the heartbeat.
  local n
  n=$(cd "$src" && go list -deps "${pkgs[@]}" | wc -l) ||
    die "fetching the components' modules failed: is the Go module proxy reachable?"
  log "every module fetched in $((SECONDS - start))s: ${n} packages (with the standard library) for ${#pkgs[@]} commands"
  # Its failure is not this build's: the build below compiles what it left, and says why.
  wait "$std" || true
  echo "packages ${n}" >"$PROGRESS"

  local ld="-s -w" p tmp
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X ${p}.gitVersion=${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=$(cut -d. -f2 <<<"${K8S_VERSION}")"
    ld+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=1970-01-01T00:00:00Z"
  done
  tmp=$(mktemp -d "${OUT}/.components.XXXXXX")
  # -v names each package as it is compiled (into PROGRESS): the heartbeat counts them.
  (cd "$src" && go build -v -trimpath -gcflags=all=-dwarf=false -ldflags "$ld" -o "${tmp}/" "${pkgs[@]}" 2>>"$PROGRESS") || {
    tail -n 20 "$PROGRESS" >&2; rm -rf "$tmp"; die "building the components failed (${pkgs[*]})"
  }
  local name goname
  for c in "${pending[@]}"; do
    read -r name _ goname <<<"$c"
    mv "${tmp}/${goname}" "${OUT}/${name}"
    log "built ${name}"
  done
  rmdir "$tmp"
  log "all components ready in $((SECONDS - start))s: $(($(wc -l <"$PROGRESS") - 1)) packages compiled (${OUT})"
}

main
