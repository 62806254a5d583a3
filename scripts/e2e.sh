#!/usr/bin/env bash
# e2e.sh kind|reuse|existing [ginkgo args...] [-- suite flags...]: the whole e2e run from a fresh
# machine; the suite's flags (-e2e.*, each also an STAMPEDE_E2E_* variable) go after `--`.
# TARGET names the target file the run judges (a directory: its target.yaml; default
# targets/tokensvc), validated before anything else and given to the suite (-e2e.target).
#   kind      host setup, node image, images, a fresh cluster of this run's own
#             (stampede-<run id>, or CLUSTER=), deleted at the end, the specs;
#   reuse     the same on a kept cluster (CLUSTER=, default "stampede"; created when absent): the
#             fast inner loop;
#   existing  the specs against KUBECONFIG/CONTEXT, with images from STAMPEDE_E2E_*_IMAGE.
# Environment: SEED (replays a run; a new one is picked and printed when empty), LABELS (Ginkgo
# label filter, e.g. 'atomic'; default '!chaos && !selftest', the chaos specs and the self-test
# have their own targets; 'all'
# runs every spec), ARTIFACTS (base directory, default _artifacts/: the run writes to
# ARTIFACTS/<UTC time>-seed<N>/, and ARTIFACTS/latest points at it), KEEP=true (keep the cluster
# and failed specs' namespaces), CLUSTER (names the cluster), STAMPEDE_E2E_GRACE (seconds an
# interrupted run gets to clean up, default 180), STAMPEDE_HOST_READY=true (skip host setup, only
# check that the engine answers and the egress guard is in place).
#
# Ctrl-C or SIGTERM: the signal goes to Ginkgo's process group (Ginkgo runs the suite's cleanup:
# the cluster is deleted unless KEEP=true); after the grace, whatever is still running is killed.
# Then, in every case, `stampede-cluster gc --run <run id>` removes what the run left behind.
# The run fails when the egress guard dropped a packet meanwhile (egress-why.txt says which).
#
# Before the suite starts, the node image, the workloads' images and the suite's test binary are
# built side by side (each cached by its inputs); Ginkgo then runs the compiled suite with those
# images given, so its progress reports (after 3 min, then every 2) fire only for a spec that
# stalls, never for a build. Every long step prints a heartbeat line, and writes its stage to the
# run's timeline (stages.tsv); the end of every run prints the timeline (stampede timeline), which
# results.json keeps.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=e2e
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "${REPO_ROOT}/scripts/stages.sh"
# The target's image is STAMPEDE_E2E_IMAGE (-e2e.image); its older name still sets it.
[ -z "${STAMPEDE_E2E_TOKENSVC_IMAGE:-}" ] || export STAMPEDE_E2E_IMAGE="${STAMPEDE_E2E_IMAGE:-$STAMPEDE_E2E_TOKENSVC_IMAGE}"

# A shell that starts this script in the background (CI runners, `cmd &`) makes it ignore SIGINT,
# and bash cannot trap a signal that was ignored on entry: start again with SIGINT at its default.
if [ -z "${STAMPEDE_E2E_SIGINT_RESET:-}" ] && (( 16#$(awk '/^SigIgn:/ {print $2}' /proc/$$/status) & 2 )); then
  STAMPEDE_E2E_SIGINT_RESET=1 exec env --default-signal=INT "$0" "$@"
fi

mode="${1:-kind}"; shift || true
case "$mode" in kind|reuse|existing) ;; *) die "mode '${mode}': use kind, reuse or existing" ;; esac
need_cmd go "install Go 1.26 (https://go.dev/doc/install) and put it on PATH"
# The target the run judges: TARGET (or STAMPEDE_E2E_TARGET), a file or a directory holding
# target.yaml, relative to where this script was started; the bundled token service by default.
# Made absolute here, before the cd below, since the suite runs in e2e/.
target="${TARGET:-${STAMPEDE_E2E_TARGET:-${REPO_ROOT}/targets/tokensvc}}"
[ ! -d "$target" ] || target="${target%/}/target.yaml"
[ -f "$target" ] || die "TARGET=${target}: no such file (name a target file, or a directory holding target.yaml)"
target="$(cd "$(dirname "$target")" && pwd)/$(basename "$target")"
cd "$REPO_ROOT"
grace="${STAMPEDE_E2E_GRACE:-180}"

# The node image, the workloads' images and the suite's test binary are built side by side before
# the suite starts (images are cached by their inputs' hash, so a warm run finds them at once). The
# node image, the long pole of a cold run, starts right after host setup, before even this
# script's own tools are compiled. The suite gets them as given images, and its BeforeSuite only
# brings up the cluster: no long build runs under Ginkgo, whose progress reports would print
# goroutine dumps meanwhile.
prep_jobs=() prep_names=()
prep_dir=""
start_node_image() {
  [ -z "${STAMPEDE_E2E_NODE_IMAGE:-}${STAMPEDE_NODE_IMAGE:-}" ] || return 0
  # node-image.sh says what it is still building every 30 s itself.
  set -m # a process group of its own, which stop_prepared can end whole
  STAMPEDE_HEARTBEAT=0 stage "node image" "${REPO_ROOT}/scripts/node-image.sh" >"${prep_dir}/node" &
  prep_jobs+=($!); prep_names+=("node image")
  set +m
}
# The target's images, as `stampede target images` lists them (name, build script, args): when
# scripts/build-image.sh NAME is an image's recipe, that script builds it together with the
# suite's own (the token service's: tokensvc, postgres, toxiproxy, attacker, as always); any
# other script runs after it, in the target file's directory. Every image prints NAME=IMAGE,
# which wait_prepared reads; target_image is the image the suite deploys (-e2e.image).
suite_images=(postgres toxiproxy attacker) target_recipes=() target_image=""
plan_images() {
  local fields listing
  listing=$("$bin/stampede" target images "$target") || die "listing the images of ${target} failed"
  while IFS=$'\t' read -r -a fields; do
    [ -n "$target_image" ] || target_image=${fields[0]}
    if [ "${#fields[@]}" -eq 3 ] && [ "${fields[1]}" -ef "${REPO_ROOT}/scripts/build-image.sh" ]; then
      suite_images=("${fields[2]}" "${suite_images[@]}")
    elif [ "${#fields[@]}" -ge 2 ]; then
      target_recipes+=("$(printf '%s\t' "${fields[@]}")")
    elif [ -z "${STAMPEDE_E2E_IMAGE:-}" ]; then
      die "target image ${fields[0]} has no build script (deploy.images[].build.script): give it with STAMPEDE_E2E_IMAGE"
    fi
  done <<<"$listing"
}
# shellcheck disable=SC2317 # run through stage, which shellcheck cannot follow
build_images() {
  local recipe fields
  "${REPO_ROOT}/scripts/build-image.sh" "${suite_images[@]}" || return
  for recipe in "${target_recipes[@]+"${target_recipes[@]}"}"; do
    IFS=$'\t' read -r -a fields <<<"$recipe"
    (cd "$(dirname "$target")" && "${fields[@]:1}") || { log "the build recipe of ${fields[0]} failed: ${fields[*]:1}"; return 1; }
  done
}
start_images() {
  local names recipe
  plan_images
  names=$(printf ', %s' "${suite_images[@]}")
  for recipe in "${target_recipes[@]+"${target_recipes[@]}"}"; do names+=", ${recipe%%$'\t'*}"; done
  set -m
  stage "images: ${names#, }" build_images >"${prep_dir}/images" &
  prep_jobs+=($!); prep_names+=(images)
  set +m
}
# The tools and the suite are built into the checkout (bin/e2e, e2e/.stampede-e2e.test), where Go
# relinks nothing that is up to date: built into a fresh directory, each was a 10 s link every
# run. A run then runs its own hard links to them (copies across file systems), taken under the
# same lock as the build: runs take turns, and a run's links stay as they were when a later run
# replaces a binary (Go writes a new file, never into the old one).
# link_or_copy FILE COPY: COPY is a hard link to FILE, or a copy of it.
# shellcheck disable=SC2317 # called from functions run through stage
link_or_copy() { ln -f "$1" "$2" 2>/dev/null || cp "$1" "$2"; }
# shellcheck disable=SC2317 # run through stage, which shellcheck cannot follow
compile_suite() {
  local kept="${REPO_ROOT}/e2e/.stampede-e2e.test"
  mkdir -p "$tools"
  (
    flock 9
    go_build test -c -tags e2e -o "$kept" ./e2e || exit
    link_or_copy "$kept" "$suite_bin"
  ) 9>"${tools}/.suite.lock"
}
# The suite's test binary, compiled once here and run by Ginkgo as it is (a precompiled .test
# binary); beside the tools' compile, not after it.
start_suite_compile() {
  set -m
  stage "compile: the suite" compile_suite &
  prep_jobs+=($!); prep_names+=("suite compile")
  set +m
}
# stop_prepared: end the builds still running (an interrupt, or a failure elsewhere).
# shellcheck disable=SC2317 # called from traps, which shellcheck cannot follow
stop_prepared() {
  local p
  for p in "${prep_jobs[@]}"; do kill -TERM -- "-${p}" 2>/dev/null || true; done
}
# wait_prepared: every build above done; the images they made exported for the suite.
wait_prepared() {
  local i failed="" name ref
  for i in "${!prep_jobs[@]}"; do wait "${prep_jobs[$i]}" || failed+=" ${prep_names[$i]};"; done
  # Ended, every one: stop_prepared must not signal their process groups, whose ids may be reused.
  prep_jobs=()
  [ -z "$failed" ] || { log "failed:${failed%;}"; return 1; }
  if [ -s "${prep_dir}/node" ]; then
    export STAMPEDE_E2E_NODE_IMAGE
    STAMPEDE_E2E_NODE_IMAGE=$(tail -n 1 "${prep_dir}/node")
  fi
  [ -f "${prep_dir}/images" ] || return 0
  while IFS='=' read -r name ref; do
    # The target's image, by what it is (its repository), whatever NAME its recipe printed; the
    # suite's flag is -e2e.image (STAMPEDE_E2E_IMAGE), which STAMPEDE_E2E_TOKENSVC_IMAGE, its
    # older name, still sets.
    if [ -n "$target_image" ] && [ "${ref%:*}" = "$target_image" ]; then
      export STAMPEDE_E2E_IMAGE="${STAMPEDE_E2E_IMAGE:-${STAMPEDE_E2E_TOKENSVC_IMAGE:-$ref}}"
      continue
    fi
    case "$name" in
      postgres) export STAMPEDE_E2E_POSTGRES_IMAGE="${STAMPEDE_E2E_POSTGRES_IMAGE:-$ref}" ;;
      toxiproxy) export STAMPEDE_E2E_TOXIPROXY_IMAGE="${STAMPEDE_E2E_TOXIPROXY_IMAGE:-$ref}" ;;
      attacker) export STAMPEDE_E2E_ATTACKER_IMAGE="${STAMPEDE_E2E_ATTACKER_IMAGE:-$ref}" ;;
    esac
  done <"${prep_dir}/images"
}

ginkgo_pid=""
signalled=""
# Until Ginkgo runs there is nothing of this run to clean up: a signal just ends the script.
# shellcheck disable=SC2317 # called by the traps below
on_signal() {
  local sig=$1
  if [ -z "$ginkgo_pid" ]; then
    log "got SIG${sig} before the suite started: stopping"
    stop_prepared
    exit $((128 + $(kill -l "$sig")))
  fi
  if [ -n "$signalled" ]; then
    log "got SIG${sig} again: killing the suite now; gc cleans up after it"
    kill -KILL -- "-${ginkgo_pid}" 2>/dev/null || true
    return
  fi
  signalled=$sig
  log "got SIG${sig}: passing it to ginkgo (process group ${ginkgo_pid}); cleanup gets ${grace}s"
  kill -s "$sig" -- "-${ginkgo_pid}" 2>/dev/null || true
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

bin=$(mktemp -d "${TMPDIR:-/tmp}/stampede-e2e-bin.XXXXXX")
# Where the tools and the suite are kept between runs (link_or_copy above).
tools="${REPO_ROOT}/bin/e2e"
# The suite's test binary lives in e2e/ (Ginkgo runs a precompiled suite in its directory), under
# a name of this run's own, so that runs in parallel do not share it.
suite_bin="${REPO_ROOT}/e2e/.stampede-e2e-$$.test"
trap 'stop_prepared; rm -rf "$bin" "$suite_bin"' EXIT
# Stages before the run has a directory are timed here and written down once it has one.
pre_stages=$(mktemp "${bin}/stages.XXXXXX")
export STAMPEDE_STAGES="$pre_stages"
prep_dir=$(mktemp -d "${bin}/prepare.XXXXXX")

# The target file first, before host setup or any build: a file with problems ends the run here,
# with the validator's lines (file:line:col each), not after minutes of building.
# stampede-target is the validator alone (the standard library, YAML, e2e/target): on a machine with
# empty Go caches it compiles in seconds, where stampede would compile client-go first.
stage "target: validate" go_build run ./e2e/cmd/stampede-target validate "$target" ||
  die "the target file ${target} is not valid: its problems are listed above (stampede target validate)"
export STAMPEDE_E2E_TARGET="$target"

# On a machine with no Docker engine installed there is no node image yet: its Go components, the
# long pole of a cold run, compile while host setup installs the engine (node-image.sh
# --components decides, and does nothing on any other machine).
start_components() {
  [ -z "${STAMPEDE_E2E_NODE_IMAGE:-}${STAMPEDE_NODE_IMAGE:-}" ] || return 0
  ! command -v dockerd >/dev/null 2>&1 || return 0
  set -m
  STAMPEDE_HEARTBEAT=0 stage "node image: Go components, during host setup" "${REPO_ROOT}/scripts/node-image.sh" --components >/dev/null &
  prep_jobs+=($!); prep_names+=("node image: Go components")
  set +m
}

if [ "$mode" != existing ]; then
  start_components
  if [ "${STAMPEDE_HOST_READY:-}" = true ]; then
    # The host was set up by someone else (a shared engine, a CI image): only check it.
    docker_ok || die "STAMPEDE_HOST_READY=true but the Docker engine does not answer (DOCKER_HOST=${DOCKER_HOST:-})"
    "${REPO_ROOT}/scripts/egress-guard.sh" check || die "STAMPEDE_HOST_READY=true but the egress guard is not in place: run scripts/host-setup.sh"
  else
    stage "host setup" "${REPO_ROOT}/scripts/host-setup.sh" || die "host setup failed"
  fi
  start_node_image
  start_suite_compile
fi

# shellcheck disable=SC2317 # run through stage, which shellcheck cannot follow
build_tools() {
  # One go build for the three: their shared packages are scheduled on both cores together.
  mkdir -p "$tools"
  (
    flock 9
    go_build build -o "${tools}/" ./e2e/cmd/stampede-cluster ./e2e/cmd/stampede github.com/onsi/ginkgo/v2/ginkgo || exit
    for t in stampede-cluster stampede ginkgo; do link_or_copy "${tools}/${t}" "${bin}/${t}"; done
  ) 9>"${tools}/.lock"
}
stage "compile: stampede-cluster, stampede, ginkgo" build_tools || die "compiling stampede's tools failed"

ARTIFACTS="${ARTIFACTS:-${REPO_ROOT}/_artifacts}"
# A run id, the seed, and the run's artifacts directory named after both (before anything runs),
# as assignments whose values run-env single-quotes: an ARTIFACTS path is never run by this eval.
eval "$("$bin/stampede-cluster" run-env --seed "${SEED:-0}" --artifacts "$ARTIFACTS")"
export STAMPEDE_E2E_MODE="$mode" STAMPEDE_E2E_RUN_ID="$RUN_ID" STAMPEDE_E2E_SEED="$SEED" \
  STAMPEDE_E2E_ARTIFACTS="$ARTIFACTS_DIR" ARTIFACTS
[ -n "${KEEP:-}" ] && export STAMPEDE_E2E_KEEP="$KEEP"
[ -n "${CLUSTER:-}" ] && export STAMPEDE_E2E_CLUSTER_NAME="$CLUSTER"
mkdir -p "$ARTIFACTS_DIR"
log "run ${RUN_ID}, seed ${SEED} (replay: SEED=${SEED}), artifacts ${ARTIFACTS_DIR}"

# timeline: the stage table at the end of every run, kept in results.json too.
timeline() { "$bin/stampede" timeline "$ARTIFACTS_DIR" || log "no stage timeline: stampede timeline failed"; }

prepared=0
if [ "$mode" != existing ]; then
  start_images
  wait_prepared || prepared=$?
fi
# The stages so far (each written when it ended, some after the run got its directory) join the run's.
cat "$pre_stages" >>"${ARTIFACTS_DIR}/stages.tsv"
export STAMPEDE_STAGES="${ARTIFACTS_DIR}/stages.tsv"
[ "$prepared" = 0 ] || { timeline; die "building the images failed (logs above)"; }

# Ginkgo's flags, then after `--` the suite's own (-e2e.traffic=cluster, ...), which Ginkgo hands to
# the suite: the package goes between them.
ginkgo_args=() suite_args=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do ginkgo_args+=("$1"); shift; done
[ $# -gt 0 ] && shift && suite_args=("$@")

LABELS="${LABELS:-!chaos && !selftest}"
[ "$LABELS" = all ] && LABELS=""

# The guard's counter needs root to read: without it, say so instead of reporting a 0 nobody read.
guard_before=$("${REPO_ROOT}/scripts/egress-guard.sh" count 2>/dev/null || echo unreadable)
# Ginkgo in a process group of its own (job control), so that a signal reaches it, and the
# suite it runs, only through on_signal.
suite_t0=$(_now_ms)
set -m
# A spec that runs long prints where it is (Ginkgo's progress report) after 3 min, then every 2:
# the flags are in scripts/ginkgo-progress.flags, where e2e/progress's test checks that a stalled
# spec still gets its report. In existing mode nothing was built above: Ginkgo compiles the suite.
read -r -a progress_flags <"${REPO_ROOT}/scripts/ginkgo-progress.flags"
suite=./e2e
[ -x "$suite_bin" ] && suite=$suite_bin
"$bin/ginkgo" -tags e2e -v --fail-on-empty --timeout 60m ${CI:+--no-color} \
  "${progress_flags[@]}" \
  ${LABELS:+--label-filter="$LABELS"} \
  --output-dir "$ARTIFACTS_DIR" --junit-report junit.xml --json-report report.json \
  "${ginkgo_args[@]}" "$suite" ${suite_args[@]+-- "${suite_args[@]}"} &
ginkgo_pid=$!
set +m

rc=0
deadline=""
while :; do
  wait "$ginkgo_pid" && rc=0 || rc=$?
  kill -0 "$ginkgo_pid" 2>/dev/null || break
  # wait returned for a signal: give the suite its grace, then kill what is left.
  [ -n "$deadline" ] || deadline=$((SECONDS + grace))
  while kill -0 "$ginkgo_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
  if kill -0 "$ginkgo_pid" 2>/dev/null; then
    log "the suite did not end within ${grace}s: killing it"
    kill -KILL -- "-${ginkgo_pid}" 2>/dev/null || true
  fi
done
[ -n "$signalled" ] && rc=$((128 + $(kill -l "$signalled")))
stage_record "suite (ginkgo): cluster, specs, cleanup" "$suite_t0" "$(_now_ms)" "$([ "$rc" = 0 ] && echo ok || echo failed)"

gc_t0=$(_now_ms)
if [ "$mode" != existing ]; then
  # Nothing of this run may outlive it unless KEEP=true (gc leaves kept clusters).
  "$bin/stampede-cluster" gc --run "$RUN_ID" 2>&1 | sed 's/^/  /' >&2 || { log "gc of run ${RUN_ID} failed"; [ "$rc" = 0 ] && rc=1; }
elif [ "${KEEP:-}" != true ]; then
  # On a cluster stampede did not create: only this run's namespaces (both owner labels).
  "$bin/stampede-cluster" gc-namespaces --kubeconfig "${STAMPEDE_E2E_KUBECONFIG:-}" --context "${STAMPEDE_E2E_CONTEXT:-}" \
    --run "$RUN_ID" 2>&1 | sed 's/^/  /' >&2 || { log "removing run ${RUN_ID}'s namespaces failed"; [ "$rc" = 0 ] && rc=1; }
fi
stage_record "gc: what the run left" "$gc_t0" "$(_now_ms)" ok

stage "egress check" "${REPO_ROOT}/scripts/egress-guard.sh" since "$guard_before" "$ARTIFACTS_DIR" || { [ "$rc" = 0 ] && rc=1; }
timeline
log "artifacts in ${ARTIFACTS_DIR}"
exit "$rc"
