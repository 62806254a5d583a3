#!/usr/bin/env bash
# bench-e2e.sh: time make e2e's paths on this machine and print each one's stage table, so that a
# change can be compared with the one before it on the same machine (make bench-e2e).
#   cold   a fresh state: empty Go module and build caches and an empty STAMPEDE_CACHE (temporary
#          directories, the user's own caches are not touched), none of the images stampede builds
#          (removed from stampede's own engine first); then make e2e. Host setup's packages stay
#          installed: they are the engine this runs on. COLD=false skips this path.
#   warm   make e2e again: images cached, a fresh cluster, the default specs;
#   reuse  make e2e-reuse twice on a cluster of the bench's own; the second is the one timed (the
#          first creates the cluster), then the cluster is deleted.
# WARM=false skips the warm and reuse paths (a second cold run, say). NODE_IMAGE_FILE=F (a tarball
# of make node-image-save) is loaded into the cold state before its run: the cold path of a CI
# cache or an air-gapped colleague, whose run then builds no node image.
# Each path's artifacts go under ARTIFACTS/bench-<time>/; the summary is bench.md there.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=bench-e2e
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

cold="${COLD:-true}" warm="${WARM:-true}"
case "$cold" in true|false) ;; *) die "COLD must be true or false (got '${cold}')" ;; esac
case "$warm" in true|false) ;; *) die "WARM must be true or false (got '${warm}')" ;; esac
base="${ARTIFACTS:-${REPO_ROOT}/_artifacts}/bench-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$base"
summary="${base}/bench.md"

# The images stampede builds, in stampede's engine only: removing them elsewhere could remove
# someone else's image of the same name.
own_engine() { [ "${DOCKER_HOST:-}" = "unix://${STAMPEDE_DOCKER_SOCK}" ] && recorded started-engine; }
stampede_images() {
  docker images --format '{{.Repository}}:{{.Tag}}' |
    grep -E '^(stampede/|registry\.k8s\.io/|coredns/|docker\.io/kindest/)' || true
}

fresh_state() {
  scripts/host-setup.sh
  own_engine || die "a cold bench removes images, and this engine is not stampede's own (DOCKER_HOST=${DOCKER_HOST:-unset}): run it with stampede's engine, or COLD=false"
  # Images another cluster's nodes run stay (they are not this checkout's node image, whose tag
  # is a hash of its inputs); this checkout's node image must go, or the cold path is not cold.
  local img node gone=()
  node=$(STAMPEDE_NODE_IMAGE_SOURCE=local scripts/node-image.sh --print)
  for img in $(stampede_images); do
    if [ -n "$(docker ps -aq --filter "ancestor=${img}")" ]; then
      [ "$img" != "$node" ] || die "a cluster runs ${node}: delete it first (make gc, or make cluster-down CLUSTER=...), or COLD=false"
      log "kept ${img}: a cluster's nodes run it"
      continue
    fi
    gone+=("$img")
  done
  [ ${#gone[@]} -eq 0 ] || docker rmi "${gone[@]}" >/dev/null
  log "removed ${#gone[@]} images stampede built"
  local tmp
  tmp=$(mktemp -d /var/tmp/stampede-bench.XXXXXX)
  export GOMODCACHE="${tmp}/gomod" GOCACHE="${tmp}/gocache" STAMPEDE_CACHE="${tmp}/cache"
  log "cold state: no stampede images; GOMODCACHE, GOCACHE and STAMPEDE_CACHE under ${tmp}"
  trap 'chmod -R u+w "'"$tmp"'" 2>/dev/null; rm -rf "'"$tmp"'"' EXIT
}

# busy_cpu_s: the CPU-seconds this machine has spent busy since boot (/proc/stat: user, nice,
# system, irq, softirq), to say how much of a path's wall time its work filled; steal_cpu_s: those
# the hypervisor gave to someone else, a slow day's likely cause.
busy_cpu_s() { awk '/^cpu / {print int(($2 + $3 + $4 + $7 + $8) / 100)}' /proc/stat; }
steal_cpu_s() { awk '/^cpu / {print int($9 / 100)}' /proc/stat; }

# timed_run NAME MAKE_TARGET...: one path, its wall time, the CPU it kept busy and its stage table
# into the summary.
timed_run() {
  local name=$1 start rc=0 dir cpu0 steal0 wall; shift
  start=$SECONDS cpu0=$(busy_cpu_s) steal0=$(steal_cpu_s)
  log "${name}: make $*"
  ARTIFACTS="${base}/${name}" make --no-print-directory "$@" >"${base}/${name}.log" 2>&1 || rc=$?
  dir=$(readlink -f "${base}/${name}/latest" 2>/dev/null || true)
  wall=$((SECONDS - start))
  {
    printf '\n## %s: make %s: rc %s in %ss, %s CPU-s busy of %s on %s cores (%s stolen by the hypervisor)\n\n```\n' \
      "$name" "$*" "$rc" "$wall" "$(($(busy_cpu_s) - cpu0))" "$((wall * $(nproc)))" "$(nproc)" "$(($(steal_cpu_s) - steal0))"
    # With the run's own flag set (go_build), its build cache has it: a plain go run compiled stampede anew.
    if [ -n "$dir" ]; then go_build run ./e2e/cmd/stampede timeline "$dir" 2>&1; else echo "no run directory (see ${name}.log)"; fi
    printf '```\n'
  } >>"$summary"
  log "${name}: rc ${rc} in $((SECONDS - start))s (log ${base}/${name}.log)"
  return "$rc"
}

{
  echo "# make e2e on $(hostname): $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(date -u +%FT%TZ)"
  echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$summary"

failed=""
if [ "$cold" = true ]; then
  fresh_state
  if [ -n "${NODE_IMAGE_FILE:-}" ]; then
    t0=$SECONDS
    scripts/node-image-archive.sh load "$NODE_IMAGE_FILE" >/dev/null || die "loading ${NODE_IMAGE_FILE} failed"
    printf '\nThe cold state got the node image from %s (make node-image-load) in %ss.\n' "$NODE_IMAGE_FILE" "$((SECONDS - t0))" >>"$summary"
  fi
  timed_run cold e2e || failed+=" cold"
fi
if [ "$warm" = true ]; then
  timed_run warm e2e || failed+=" warm"
  cluster="stampede-bench-$$"
  timed_run reuse-create e2e-reuse CLUSTER="$cluster" || failed+=" reuse-create"
  timed_run reuse e2e-reuse CLUSTER="$cluster" || failed+=" reuse"
  scripts/cluster.sh down --name "$cluster" >/dev/null 2>&1 || log "deleting ${cluster} failed: make cluster-down CLUSTER=${cluster}"
fi

cat "$summary"
[ -z "$failed" ] || die "failed:${failed} (logs in ${base})"
