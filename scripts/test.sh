#!/usr/bin/env bash
# test.sh: everything that needs no cluster: vet, then unit and integration tests (the service's
# against a real PostgreSQL that the tests start themselves). The service's packages are vetted
# and tested a second time with the build tag selftest, which compiles in its deliberately broken
# variants (service/mutants). Then the orders target's Python tests (its packages installed from
# Debian when missing). The e2e specs carry the build tag e2e and are not part of this.
# First of all, shellcheck over scripts/ and actionlint on the GitHub workflows: quick, and a
# broken script or workflow fails here.
set -o errexit -o nounset -o pipefail
LOG_PREFIX="test"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_cmd go "install Go 1.26 (https://go.dev/doc/install) and put it on PATH"
"${REPO_ROOT}/scripts/ensure-postgres.sh"
cd "$REPO_ROOT"
log "shellcheck: scripts/, .ci/ and targets/"
"${REPO_ROOT}/scripts/lint-shell.sh"
log "actionlint: .github/workflows"
"${REPO_ROOT}/scripts/lint-workflows.sh"
log "go vet"
go vet ./...
go vet -tags e2e ./...
go vet -tags selftest ./service/...
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null \
  && [ -z "${STAMPEDE_CHROMIUM:-}" ]; then
  log "no Chromium on PATH: the browser test of report.html (e2e/report) skips; apt-get install -y chromium runs it"
fi
log "go test"
go test -count=1 ./...
log "go test -tags selftest: the service's deliberately broken variants (service/mutants)"
go test -count=1 -tags selftest ./service/...
log "the orders target's own tests (targets/orders/test.sh: Python, a throwaway PostgreSQL)"
/usr/bin/python3 -c 'import psycopg2, gunicorn' 2>/dev/null || apt_install python3-psycopg2 gunicorn
"${REPO_ROOT}/targets/orders/test.sh"
log "host setup and undo leave the host as it was"
"${REPO_ROOT}/scripts/host-undo-test.sh"
log "stampede's apt installs take turns"
"${REPO_ROOT}/scripts/apt-install-test.sh"
