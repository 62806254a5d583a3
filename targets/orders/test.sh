#!/usr/bin/env bash
# test.sh [UNITTEST ARGS...]: the orders API's tests (tests/test_orders.py, stdlib unittest)
# against a throwaway PostgreSQL they start and stop themselves. Needs Debian's python3 with
# python3-psycopg2 and gunicorn, PostgreSQL's server binaries (scripts/ensure-postgres.sh
# installs them when run as root) and openssl (the tests' TLS certificates).
#
# ORDERS_TEST_BURSTS sets the bursts per mode in the concurrency tests (default 20).
set -o errexit -o nounset -o pipefail
LOG_PREFIX=orders-test
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
here="${REPO_ROOT}/targets/orders"

# Debian's interpreter, where apt puts the packages: a python3 earlier on PATH (pyenv, a venv)
# would not see them.
py=/usr/bin/python3
[ -x "$py" ] || die "no /usr/bin/python3: apt-get install python3 python3-psycopg2 gunicorn"
"$py" -c 'import psycopg2, gunicorn' 2>/dev/null ||
  die "python3-psycopg2 or gunicorn missing: apt-get install python3-psycopg2 gunicorn"
need_cmd openssl "apt-get install openssl"
"${REPO_ROOT}/scripts/ensure-postgres.sh"

cd "$here"
# No __pycache__ in the tree: the image's tag hashes these files.
PYTHONDONTWRITEBYTECODE=1 nice "$py" -m unittest "${@:-tests.test_orders}"
