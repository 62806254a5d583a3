#!/usr/bin/env bash
# pre-release.sh [ginkgo args...]: verify a release on a cluster stampede did not create (staging).
#   KUBECONFIG, CONTEXT   the cluster; the context must be named (the current one is never used)
#   IMAGE, POSTGRES_IMAGE   images the cluster can pull (a registry's references): the target's
#                           (TOKENSVC_IMAGE, its older name, still works) and PostgreSQL's
#   ATTACKER_IMAGE        the attacker (scripts/build-image.sh attacker): the bursts come from a Job
#                         inside the cluster, as in-cluster clients reach the token service, and
#                         the chaos rounds from round servers of the same image (port-forwarded)
#   TARGET                optional: the target file the run judges, or a directory holding
#                         target.yaml (default targets/tokensvc); scripts/e2e.sh validates it first
#   TOXIPROXY_IMAGE       optional: the db-latency and db-cut faults need it (skipped without)
#   MANIFESTS=DIR         optional: a team's kustomize directory of the target, deployed instead
#                         of its target file's deploy.kustomize (README: what it must provide)
#   LABELS                default 'registration || chaos': the registration specs, the canary and
#                         every chaos fault this cluster allows (node faults are skipped, with why)
#   DB_STORAGE            optional: emptydir (default: nothing outlives a spec, db-restart is
#                         skipped) or pvc (a claim per spec from the default StorageClass)
#   DNS                   optional: the DNS peers of the pods' egress policy, space-separated
#                         NAMESPACE/KEY=VALUE and CIDRs (default
#                         'kube-system/k8s-app=kube-dns 169.254.20.10/32')
#   RUN_ROLE              optional: a ClusterRole each spec binds to this identity in its own
#                         namespace (manifests/rbac's stampede-run; README: Rights existing mode needs)
# Each spec creates a namespace of its own (never adopting one that exists), labelled with the
# run's id and app.kubernetes.io/managed-by=stampede, and deletes it; after the run, even an
# interrupted one, the run's namespaces (both labels) are deleted, and nothing else is touched.
# The token service's Service is ClusterIP: no node port opens.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=pre-release
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -n "${KUBECONFIG:-}" ] || die "name the cluster: KUBECONFIG=path/to/kubeconfig CONTEXT=name make pre-release"
[ -f "$KUBECONFIG" ] || die "KUBECONFIG=${KUBECONFIG}: no such file"
[ -n "${CONTEXT:-}" ] || die "name the context: CONTEXT=name (the kubeconfig's current context is never used)"
# IMAGE is the target's image; TOKENSVC_IMAGE, its older name, is still accepted.
IMAGE="${IMAGE:-${TOKENSVC_IMAGE:-}}"
{ [ -n "${IMAGE:-}" ] && [ -n "${POSTGRES_IMAGE:-}" ]; } ||
  die "name the images the cluster pulls: IMAGE=registry/tokensvc:tag (the target's) POSTGRES_IMAGE=registry/postgres:tag"
[ -n "${ATTACKER_IMAGE:-}" ] || [ "${STAMPEDE_E2E_TRAFFIC:-}" = host ] ||
  die "name the attacker image the cluster pulls: ATTACKER_IMAGE=registry/stampede-attacker:tag (or STAMPEDE_E2E_TRAFFIC=host with STAMPEDE_E2E_SERVICE_URL)"
[ -z "${MANIFESTS:-}" ] || [ -d "$MANIFESTS" ] || die "MANIFESTS=${MANIFESTS}: not a directory"

export STAMPEDE_E2E_KUBECONFIG="$KUBECONFIG" STAMPEDE_E2E_CONTEXT="$CONTEXT" \
  STAMPEDE_E2E_IMAGE="$IMAGE" STAMPEDE_E2E_POSTGRES_IMAGE="$POSTGRES_IMAGE"
[ -z "${TOXIPROXY_IMAGE:-}" ] || export STAMPEDE_E2E_TOXIPROXY_IMAGE="$TOXIPROXY_IMAGE"
[ -z "${ATTACKER_IMAGE:-}" ] || export STAMPEDE_E2E_ATTACKER_IMAGE="$ATTACKER_IMAGE"
if [ -n "${MANIFESTS:-}" ]; then
  STAMPEDE_E2E_MANIFESTS="$(cd "$MANIFESTS" && pwd)"
  export STAMPEDE_E2E_MANIFESTS
fi
[ -z "${DB_STORAGE:-}" ] || export STAMPEDE_E2E_DB_STORAGE="$DB_STORAGE"
[ -z "${DNS:-}" ] || export STAMPEDE_E2E_DNS="$DNS"
[ -z "${RUN_ROLE:-}" ] || export STAMPEDE_E2E_RUN_ROLE="$RUN_ROLE"
export LABELS="${LABELS:-registration || chaos}"
log "verifying context ${CONTEXT} of ${KUBECONFIG} with ${IMAGE}${MANIFESTS:+ and the manifests in ${MANIFESTS}}${TARGET:+, target ${TARGET}}"
exec "${REPO_ROOT}/scripts/e2e.sh" existing "$@"
