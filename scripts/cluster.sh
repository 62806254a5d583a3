#!/usr/bin/env bash
# cluster.sh up|down|smoke|kubeconfig|gc [flags]: stampede's kind clusters through
# e2e/cmd/stampede-cluster (default name "stampede", --name N for another), then the egress
# guard's drop counter for this run: it must stay 0, and when it moved the command fails and
# the guard's log goes to ARTIFACTS/<UTC time>-cluster-<command>/egress-why.txt.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=cluster
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd go "install Go 1.26 (https://go.dev/doc/install) and put it on PATH"
before=$("${REPO_ROOT}/scripts/egress-guard.sh" count 2>/dev/null || echo unreadable)
rc=0
(cd "$REPO_ROOT" && go run ./e2e/cmd/stampede-cluster "$@") || rc=$?
dir="${ARTIFACTS:-${REPO_ROOT}/_artifacts}/$(date -u +%Y%m%dT%H%M%SZ)-cluster-${1:-none}"
"${REPO_ROOT}/scripts/egress-guard.sh" since "$before" "$dir" || { [ "$rc" = 0 ] && rc=1; }
exit "$rc"
