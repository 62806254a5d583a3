#!/usr/bin/env bash
# ensure-postgres.sh: make sure PostgreSQL server binaries (initdb, postgres) exist for the
# service's integration tests (service/internal/pgtest starts its own throwaway server). Installs
# Debian's postgresql package when they are missing, without starting its system cluster; does
# nothing when they are present.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=ensure-postgres
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_postgres() {
  command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

have_postgres && exit 0
apt_install postgresql
have_postgres || die "postgresql installed but initdb still not found under /usr/lib/postgresql/*/bin"
