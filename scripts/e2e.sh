#!/usr/bin/env bash
# e2e.sh kind|reuse|existing [ginkgo args...]: the whole e2e run from a fresh machine.
#   kind      host setup, node image, images, a fresh cluster (deleted at the end), the specs;
#   reuse     the same on a kept cluster "stampede" (created when absent): the fast inner loop;
#   existing  the specs against KUBECONFIG/CONTEXT, with images from STAMPEDE_E2E_*_IMAGE.
# Environment: SEED (replays a run), LABELS (Ginkgo label filter, e.g. 'atomic'; default '!chaos',
# the chaos specs have their own target; 'all' runs every spec), ARTIFACTS
# (default _artifacts/), KEEP=true (keep the cluster and failed specs' namespaces).
set -o errexit -o nounset -o pipefail
LOG_PREFIX=e2e
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode="${1:-kind}"; shift || true
case "$mode" in kind|reuse|existing) ;; *) die "mode '${mode}': use kind, reuse or existing" ;; esac
need_cmd go "install Go 1.26 (https://go.dev/doc/install) and put it on PATH"
ARTIFACTS="${ARTIFACTS:-${REPO_ROOT}/_artifacts}"
mkdir -p "$ARTIFACTS"
export ARTIFACTS STAMPEDE_E2E_MODE="$mode"
[ -n "${SEED:-}" ] && export STAMPEDE_E2E_SEED="$SEED"
[ -n "${KEEP:-}" ] && export STAMPEDE_E2E_KEEP="$KEEP"

if [ "$mode" != existing ]; then
  "${REPO_ROOT}/scripts/host-setup.sh"
  STAMPEDE_E2E_NODE_IMAGE=$("${REPO_ROOT}/scripts/node-image.sh" | tail -n 1)
  export STAMPEDE_E2E_NODE_IMAGE
  log "node image ${STAMPEDE_E2E_NODE_IMAGE}"
  while IFS='=' read -r name image; do
    case "$name" in
      tokensvc) export STAMPEDE_E2E_TOKENSVC_IMAGE="$image" ;;
      postgres) export STAMPEDE_E2E_POSTGRES_IMAGE="$image" ;;
      toxiproxy) export STAMPEDE_E2E_TOXIPROXY_IMAGE="$image" ;;
    esac
  done < <("${REPO_ROOT}/scripts/build-image.sh" all)
  log "images ${STAMPEDE_E2E_TOKENSVC_IMAGE:-?} ${STAMPEDE_E2E_POSTGRES_IMAGE:-?} ${STAMPEDE_E2E_TOXIPROXY_IMAGE:-?}"
fi

LABELS="${LABELS:-!chaos}"
[ "$LABELS" = all ] && LABELS=""

guard_before=$("${REPO_ROOT}/scripts/egress-guard.sh" count 2>/dev/null || echo 0)
rc=0
(
  cd "$REPO_ROOT"
  go run github.com/onsi/ginkgo/v2/ginkgo -tags e2e -v --fail-on-empty --timeout 60m ${CI:+--no-color} \
    ${LABELS:+--label-filter="$LABELS"} \
    --output-dir "$ARTIFACTS" --junit-report junit.xml --json-report report.json \
    "$@" ./e2e
) || rc=$?
guard_after=$("${REPO_ROOT}/scripts/egress-guard.sh" count 2>/dev/null || echo 0)
log "egress guard: $((guard_after - guard_before)) packets dropped during this run (total ${guard_after}); must be 0"
log "artifacts in ${ARTIFACTS}"
exit "$rc"
