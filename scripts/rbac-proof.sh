#!/usr/bin/env bash
# rbac-proof.sh: prove that existing mode (make pre-release) needs no right beyond manifests/rbac,
# and leaves nothing behind, on a kind cluster of its own that it creates and deletes.
#
#  1. creates the kind cluster CLUSTER, loads the images, applies manifests/rbac as its admin;
#  2. writes a kubeconfig for the ServiceAccount stampede-system/stampede alone (a token from the
#     TokenRequest API), and checks that the admission guard refuses it outside its namespaces;
#  3. lists, as the admin, every namespace, PV and cluster-scoped object, and every Service's
#     node ports; watches Services and PersistentVolumeClaims for the whole proof;
#  4. runs make pre-release as the ServiceAccount with RUN_ROLE=stampede-run: it must pass;
#  5. for each rule of REMOVE, removes that one rule, runs the specs that need it: the run must
#     fail, and say exactly one "missing permission" line, naming it; the rule is put back;
#  6. lists everything again once the runs' namespaces are gone: before == after, 0 node ports.
#
#   CLUSTER   the kind cluster to create (default stampede-rbac-proof); it must not exist
#   LABELS    the passing run's specs (default: atomic's invariants, the network policy spec,
#             pod-kill and scale: Jobs, probe pods, round servers, port-forwards, both faults' rights)
#   REMOVE    rules to remove, one run each, as ROLE:RESOURCE=LABELS (default
#             'stampede-run:pods/portforward=atomic && invariants')
#   OUT       where the listings, logs and summary go (default _artifacts/rbac-proof-<UTC time>)
#   KEEP=true keeps the cluster afterwards
#   TOKENSVC_IMAGE, POSTGRES_IMAGE, ATTACKER_IMAGE   local images to use instead of building them
#   STAMPEDE_NODE_IMAGE                              the node image (default: scripts/node-image.sh --print)
# Exit status 0 only when every step held. The node image must exist (make node-image).
set -o errexit -o nounset -o pipefail
LOG_PREFIX=rbac-proof
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER="${CLUSTER:-stampede-rbac-proof}"
PASS_LABELS="${LABELS:-(atomic && invariants) || netpol || pod-kill || scale}"
REMOVE="${REMOVE:-stampede-run:pods/portforward=atomic && invariants}"
OUT="${OUT:-${REPO_ROOT}/_artifacts/rbac-proof-$(date -u +%Y%m%dT%H%M%SZ)}"
SA_NS=stampede-system SA=stampede RUN_ROLE=stampede-run CONTEXT=rbac-proof

need_cmd kubectl "install kubectl (Debian: apt-get install kubernetes-client), it applies and lists as the admin"
need_cmd jq "apt-get install jq"
docker_ok || die "no Docker engine answers: run make host-setup (or set DOCKER_HOST)"
node_image="${STAMPEDE_NODE_IMAGE:-$("${REPO_ROOT}/scripts/node-image.sh" --print)}"
docker image inspect "$node_image" >/dev/null 2>&1 || die "node image ${node_image} is not built: make node-image"
mkdir -p "$OUT"
started=$SECONDS

bin="$(mktemp -d)"
watch_pids=()
cleanup() {
  local rc=$?
  for pid in "${watch_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ "${KEEP:-}" != true ] && [ -x "$bin/stampede-cluster" ]; then
    log "deleting cluster ${CLUSTER}"
    "$bin/stampede-cluster" down --name "$CLUSTER" || rc=1
  fi
  rm -rf "$bin"
  exit "$rc"
}
trap cleanup EXIT
go build -o "$bin/stampede-cluster" ./e2e/cmd/stampede-cluster

if "$bin/stampede-cluster" kubeconfig --name "$CLUSTER" >/dev/null 2>&1; then
  trap - EXIT
  die "cluster ${CLUSTER} exists: the proof needs one of its own (CLUSTER=another name)"
fi
log "creating cluster ${CLUSTER} (${node_image})"
"$bin/stampede-cluster" up --name "$CLUSTER" --image "$node_image" >"$OUT/cluster-up.log" 2>&1 ||
  die "cluster up failed: $OUT/cluster-up.log"
admin="$("$bin/stampede-cluster" kubeconfig --name "$CLUSTER")"
ak() { kubectl --kubeconfig "$admin" "$@"; }

log "building and loading the images"
declare -A img=([tokensvc]="${TOKENSVC_IMAGE:-}" [postgres]="${POSTGRES_IMAGE:-}" [attacker]="${ATTACKER_IMAGE:-}")
if [ -z "${img[tokensvc]}" ] || [ -z "${img[postgres]}" ] || [ -z "${img[attacker]}" ]; then
  while IFS='=' read -r name ref; do [ -n "${img[$name]}" ] || img[$name]=$ref; done < <("${REPO_ROOT}/scripts/build-image.sh" tokensvc postgres attacker)
fi
for name in tokensvc postgres attacker; do [ -n "${img[$name]:-}" ] || die "build-image.sh printed no ${name} image"; done
"$bin/stampede-cluster" load --name "$CLUSTER" --images "${img[tokensvc]},${img[postgres]},${img[attacker]}" >"$OUT/load.log" 2>&1 ||
  die "loading the images failed: $OUT/load.log"

log "applying manifests/rbac as the cluster's admin"
ak apply -k "${REPO_ROOT}/manifests/rbac" >"$OUT/rbac-apply.log"

# The ServiceAccount's kubeconfig: the cluster's address and CA, a token from the TokenRequest API.
sa_kubeconfig="$OUT/serviceaccount.kubeconfig"
server="$(ak config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')"
ak config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$bin/ca.crt"
token="$(ak create token "$SA" -n "$SA_NS" --duration 3h)"
sk() { kubectl --kubeconfig "$sa_kubeconfig" --context "$CONTEXT" "$@"; }
kubectl --kubeconfig "$sa_kubeconfig" config set-cluster "$CLUSTER" --server "$server" \
  --certificate-authority "$bin/ca.crt" --embed-certs >/dev/null
kubectl --kubeconfig "$sa_kubeconfig" config set-credentials "$SA" --token "$token" >/dev/null
kubectl --kubeconfig "$sa_kubeconfig" config set-context "$CONTEXT" --cluster "$CLUSTER" --user "$SA" >/dev/null
[ "$(sk auth whoami -o jsonpath='{.status.userInfo.username}')" = "system:serviceaccount:${SA_NS}:${SA}" ] ||
  die "the kubeconfig does not authenticate as ${SA_NS}/${SA}"

failures=()
fail() { failures+=("$*"); log "FAILED: $*"; }

# Not an administrator: the guard and RBAC refuse it everything outside its own namespaces.
log "checking the ServiceAccount's limits (server-side dry runs)"
if sk auth can-i get secrets -n kube-system >/dev/null 2>&1; then fail "the ServiceAccount may read kube-system's Secrets"; fi
# The API server compiles a new admission policy within moments: wait until it answers. The
# target is a namespace that is not the run's (its own): kube-public and default are refused by
# the API server itself, whatever the rights.
guard_refuses_delete() {
  local out
  out="$(sk delete namespace "$SA_NS" --dry-run=server 2>&1)" && return 1
  grep -q stampede-own-namespaces <<<"$out"
}
retry_until 60 "the guard stampede-own-namespaces to be in force" guard_refuses_delete ||
  fail "the guard did not refuse deleting ${SA_NS}: $(sk delete namespace "$SA_NS" --dry-run=server 2>&1 | head -1)"
if out="$(sk create rolebinding stampede-run -n default --clusterrole "$RUN_ROLE" --serviceaccount "${SA_NS}:${SA}" --dry-run=server 2>&1)"; then
  fail "the ServiceAccount may bind ${RUN_ROLE} in default"
else
  grep -q stampede-own-namespaces <<<"$out" || fail "binding in default was refused, but not by the guard: $out"
fi
# Control: what the run does, the guard lets through, so that its refusals above mean something.
sk create --dry-run=server -f - >/dev/null <<EOF || fail "the guard refuses the namespace a run creates"
apiVersion: v1
kind: Namespace
metadata:
  name: stampede-guard-control
  labels: {app.kubernetes.io/managed-by: stampede, stampede.io/run: control}
EOF

# snapshot FILE: every namespace, PV and cluster-scoped object by name, as the admin sees them.
snapshot() {
  local r
  {
    for r in $(ak api-resources --namespaced=false --verbs=list -o name | LC_ALL=C sort); do
      ak get "$r" -o name 2>/dev/null | sed "s#^#${r} #" || true
    done
  } | LC_ALL=C sort >"$1"
}
# nodeports FILE: every Service with its type and node ports.
nodeports() {
  ak get svc -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.spec.type} {.spec.ports[*].nodePort}{"\n"}{end}' |
    LC_ALL=C sort >"$1"
}
snapshot "$OUT/before.txt"
nodeports "$OUT/nodeports-before.txt"
# Every Service and claim that exists at any moment of the runs, with its node ports.
ak get svc -A --watch -o jsonpath='{.metadata.namespace}/{.metadata.name} {.spec.type} {.spec.ports[*].nodePort}{"\n"}' \
  >"$OUT/services-seen.txt" 2>&1 &
watch_pids+=($!)
ak get pvc -A --watch -o name >"$OUT/claims-seen.txt" 2>&1 &
watch_pids+=($!)

# prerelease LOG LABELS: make pre-release as the ServiceAccount; its exit status.
prerelease() {
  local log_file=$1 labels=$2 rc=0
  make -C "$REPO_ROOT" --no-print-directory pre-release KUBECONFIG="$sa_kubeconfig" CONTEXT="$CONTEXT" \
    TOKENSVC_IMAGE="${img[tokensvc]}" POSTGRES_IMAGE="${img[postgres]}" ATTACKER_IMAGE="${img[attacker]}" \
    RUN_ROLE="$RUN_ROLE" LABELS="$labels" ARTIFACTS="$OUT/runs" >"$log_file" 2>&1 || rc=$?
  return "$rc"
}

log "pre-release as ${SA_NS}/${SA} with exactly manifests/rbac: LABELS='${PASS_LABELS}'"
t0=$SECONDS
if prerelease "$OUT/pass.log" "$PASS_LABELS"; then pass_rc=0; else pass_rc=$?; fi
pass_took=$((SECONDS - t0))
pass_summary="$(grep -E '^stampede e2e: ' "$OUT/pass.log" | tail -1 || true)"
[ "$pass_rc" = 0 ] || fail "make pre-release with every rule failed (exit ${pass_rc}): $OUT/pass.log"
grep -q '^missing permission:' "$OUT/pass.log" && fail "a right was missing with every rule: $(grep -m1 '^missing permission:' "$OUT/pass.log")"

removed_report=()
IFS=';' read -r -a removals <<<"$REMOVE"
for removal in "${removals[@]}"; do
  role="${removal%%:*}" rest="${removal#*:}"
  resource="${rest%%=*}" labels="${rest#*=}"
  log "removing the ${resource} rule from ${role}; pre-release LABELS='${labels}' must fail naming it"
  ak get clusterrole "$role" -o json |
    jq --arg r "$resource" 'del(.metadata.resourceVersion, .metadata.uid, .metadata.creationTimestamp, .metadata.managedFields)
      | .rules |= map(select((.resources // []) | index($r) | not))' >"$bin/role.json"
  [ "$(jq '.rules | length' "$bin/role.json")" -lt "$(ak get clusterrole "$role" -o json | jq '.rules | length')" ] ||
    die "${role} has no rule for ${resource}"
  ak replace -f "$bin/role.json" >/dev/null
  log_file="$OUT/removed-${role}-${resource//\//_}.log"
  t0=$SECONDS
  if prerelease "$log_file" "$labels"; then rc=0; else rc=$?; fi
  took=$((SECONDS - t0))
  ak apply -k "${REPO_ROOT}/manifests/rbac" >/dev/null
  mapfile -t lines < <(grep -E '^missing permission:' "$log_file" | LC_ALL=C sort -u)
  if [ "$rc" = 0 ]; then
    fail "pre-release passed without ${role}'s ${resource} rule"
  elif [ "${#lines[@]}" != 1 ] || [[ "${lines[0]}" != *" ${resource} "* ]]; then
    fail "without ${role}'s ${resource} rule: ${#lines[@]} distinct missing-permission lines, want one naming ${resource}: ${lines[*]:-none}"
  fi
  removed_report+=("without ${role}'s ${resource} rule: exit ${rc} after ${took}s; ${lines[0]:-no missing-permission line}")
done

log "waiting until the runs' namespaces are gone"
run_namespaces() { ak get ns -l app.kubernetes.io/managed-by=stampede -o name 2>/dev/null | grep -q .; }
deadline=$((SECONDS + 600))
while run_namespaces; do
  [ "$SECONDS" -lt "$deadline" ] || { fail "the runs' namespaces were still there after 10 min"; break; }
  ak wait ns -l app.kubernetes.io/managed-by=stampede --for=delete --timeout=60s >/dev/null 2>&1 || true
done
for pid in "${watch_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
watch_pids=()
snapshot "$OUT/after.txt"
nodeports "$OUT/nodeports-after.txt"
diff -u "$OUT/before.txt" "$OUT/after.txt" >"$OUT/cluster-scoped.diff" || fail "cluster-scoped objects differ: $OUT/cluster-scoped.diff"
diff -u "$OUT/nodeports-before.txt" "$OUT/nodeports-after.txt" >"$OUT/nodeports.diff" || fail "Services differ: $OUT/nodeports.diff"
# A Service of the runs with a node port, at any moment: its line has a port number after the type.
created_nodeports="$(awk '/^stampede-/ && NF > 2' "$OUT/services-seen.txt" | sort -u | wc -l)"
services_seen="$(awk '/^stampede-/ {print $1}' "$OUT/services-seen.txt" | sort -u | wc -l)"
claims_seen="$(sort -u "$OUT/claims-seen.txt" | grep -c . || true)"
[ "$created_nodeports" = 0 ] || fail "${created_nodeports} Services of the runs had a node port: $OUT/services-seen.txt"
[ "$services_seen" -gt 0 ] || fail "the Service watch saw none of the runs' Services: it proves nothing"
[ "$claims_seen" = 0 ] || fail "${claims_seen} PersistentVolumeClaims were created: $OUT/claims-seen.txt"

{
  echo "rbac proof on ${CLUSTER} (${node_image}), as system:serviceaccount:${SA_NS}:${SA}, $(date -u +%FT%TZ)"
  echo "pass run: LABELS='${PASS_LABELS}': exit ${pass_rc} after ${pass_took}s; ${pass_summary}"
  printf '%s\n' "${removed_report[@]}"
  echo "cluster-scoped objects (namespaces, PVs included): before $(wc -l <"$OUT/before.txt"), after $(wc -l <"$OUT/after.txt"), diff $(grep -c '^[-+][^-+]' "$OUT/cluster-scoped.diff" || true) lines"
  echo "PVs before/after: $(grep -c '^persistentvolumes ' "$OUT/before.txt" || true)/$(grep -c '^persistentvolumes ' "$OUT/after.txt" || true); claims created during the runs: ${claims_seen}"
  echo "Services of the runs seen: ${services_seen}; with a node port: ${created_nodeports}; node ports before/after: $(awk 'NF > 2' "$OUT/nodeports-before.txt" | wc -l)/$(awk 'NF > 2' "$OUT/nodeports-after.txt" | wc -l)"
  echo "took $((SECONDS - started))s in all"
  if [ "${#failures[@]}" = 0 ]; then echo "PROVEN"; else printf 'FAILED: %s\n' "${failures[@]}"; fi
} | tee "$OUT/summary.txt"
[ "${#failures[@]}" = 0 ]
