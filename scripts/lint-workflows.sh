#!/usr/bin/env bash
# lint-workflows.sh: actionlint on the GitHub workflows (.github/workflows/*.yml), run by
# scripts/test.sh (make test) so that a broken workflow fails the tests here, before CI. actionlint
# is pinned and fetched through the Go module proxy (`go run module@version`: nothing is added to
# go.mod); it also runs shellcheck on the workflows' `run:` scripts, with the shellcheck that
# scripts/lint-shell.sh uses (Debian's, installed when missing).
# Exits non-zero on any finding.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=actionlint
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ACTIONLINT=github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

need_cmd go "install Go 1.26 (https://go.dev/doc/install) and put it on PATH"
cd "$REPO_ROOT"
shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml)
[ "${#files[@]}" -gt 0 ] || die "no workflow in ${REPO_ROOT}/.github/workflows"
ensure_shellcheck
# An explicit path: actionlint would otherwise skip shellcheck quietly when it finds none.
go run "$ACTIONLINT" -shellcheck "$(command -v shellcheck)" "${files[@]}"
log "${#files[@]} workflows clean (${ACTIONLINT##*@})"
