#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb, postgres) exist for the service's
# integration tests (service/internal/pgtest). Installs the Debian `postgresql`
# package with apt when they are missing; does nothing when they are present.
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT

have_postgres() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if have_postgres; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-postgres: initdb not found and apt-get is unavailable; install the PostgreSQL server (initdb, postgres) yourself" >&2
  exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  sudo=(sudo)
fi

echo "ensure-postgres: installing postgresql with apt (needed by ${REPO_ROOT}/service tests)" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# --no-install-recommends keeps it to the server; the tests start their own cluster.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null

if ! have_postgres; then
  echo "ensure-postgres: postgresql installed but initdb still not found" >&2
  exit 1
fi
