#!/bin/bash
# postgres-entrypoint [POSTGRES_ARG...]: the entrypoint of the stampede/postgres image.
#
# On an empty PGDATA it runs initdb: superuser POSTGRES_USER (default postgres) with the password
# in the file POSTGRES_PASSWORD_FILE (required), database POSTGRES_DB (default POSTGRES_USER),
# scram-sha-256 for every TCP connection, trust for the local socket (pg_isready, `kubectl exec ...
# psql`). When the superuser is postgres and STAMPEDE_PGDATA_TEMPLATE holds a cluster (the image's,
# made at its build by `postgres-entrypoint --template DIR` with the same initdb), it copies that
# instead and sets the superuser's password: the same cluster, without initdb's 2 s.
#
# Passwords come from files (a Secret volume mounted read-only), never from the environment: a
# variable would stay in PostgreSQL's environment for its whole life (/proc/1/environ, `kubectl
# describe`, every backend it forks). POSTGRES_PASSWORD or POSTGRES_APP_PASSWORD set is refused.
#
# Least privilege: with POSTGRES_APP_USER and POSTGRES_APP_PASSWORD_FILE set, initdb also creates that
# role (no superuser, no createdb, no createrole), gives it a schema of its own name in POSTGRES_DB
# (so its unqualified tables land there) and nothing else, and lets only that role in from other
# hosts; the superuser then logs in only over the socket and loopback. With POSTGRES_TLS_DIR set
# (tls.crt, tls.key; the key 0600 and owned by postgres, or 0640 and owned by root), PostgreSQL
# serves TLS and the role's line in pg_hba is hostssl: a plaintext login from another host is refused.
#
# Then it execs postgres, which becomes PID 1 and so gets the stop signal itself; the image's STOPSIGNAL is
# SIGINT (fast shutdown: SIGTERM would wait for the services' pooled connections to close).
#
# Volumes: PGDATA is a subdirectory of the mount (/var/lib/postgresql/data/pgdata) so that a
# lost+found or a mount point it cannot chmod does not stop initdb. Run it as uid 999 (postgres)
# on a volume that uid can write: kind's local-path volumes are 0777, other storage needs the Pod's
# fsGroup: 999. Started as root instead, it chowns PGDATA and drops to postgres itself.
set -o errexit -o nounset -o pipefail

log() { printf '%s postgres-entrypoint: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# run_initdb DIR USER PWFILE: initdb with the settings of every cluster of this image (superuser
# USER, its password the first line of PWFILE), the pods' own and the image's template alike.
run_initdb() {
  initdb --pgdata="$1" --username="$2" --pwfile="$3" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-instructions >&2
}

# single_user DIR DB: runs the SQL on stdin, one statement per line (each on its own), in database
# DB of the cluster in DIR, in single-user mode, and fails at the first statement that fails, with
# the server's error on stderr: without exit_on_error, single-user mode goes on past a failed
# statement and exits 0.
# Nor does it echo a failed statement, which may hold a password, into the log.
single_user() { postgres --single -c exit_on_error=on -c log_min_error_statement=panic -D "$1" "$2" >/dev/null; }

# The superuser of the image's template cluster (STAMPEDE_PGDATA_TEMPLATE): a pod whose
# POSTGRES_USER is another runs initdb itself.
TEMPLATE_SUPERUSER=postgres

# make_template DIR: the cluster the image keeps in DIR (its build runs `postgres-entrypoint
# --template DIR`), which a pod copies instead of running initdb: on 2 busy cores initdb is 2.3 s
# and 1.6 CPU-s of every spec's database, a copy 0.2 s. Its superuser password is a random one
# nobody keeps: every copy sets its own before it serves.
make_template() {
  local pwfile
  pwfile=$(mktemp)
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pwfile"
  printf '\n' >>"$pwfile"
  run_initdb "$1" "$TEMPLATE_SUPERUSER" "$pwfile" || { rm -f "$pwfile"; die "initdb of the template failed"; }
  rm -f "$pwfile"
  log "template cluster made in $1"
}

if [ "${1:-}" = --template ]; then
  [ $# -eq 2 ] || die "usage: postgres-entrypoint --template DIR"
  make_template "$2"
  exit 0
fi

: "${PGDATA:?PGDATA is not set}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ "$(id -u)" = 0 ]; then
  pg_uid=$(id -u postgres) pg_gid=$(id -g postgres)
  # Only the mount point and PGDATA: a recursive chown of an existing cluster is slow and wrong.
  mkdir -p "$(dirname "$PGDATA")"
  chown "${pg_uid}:${pg_gid}" "$(dirname "$PGDATA")"
  [ ! -d "$PGDATA" ] || chown "${pg_uid}:${pg_gid}" "$PGDATA"
  exec setpriv --reuid="$pg_uid" --regid="$pg_gid" --init-groups -- "$0" "$@"
fi

# sql_ident NAME: NAME as a quoted SQL identifier.
sql_ident() { printf '"%s"' "${1//\"/\"\"}"; }
# sql_literal TEXT: TEXT as a quoted SQL string literal (standard_conforming_strings is on).
sql_literal() { printf "'%s'" "${1//\'/\'\'}"; }

for var in POSTGRES_PASSWORD POSTGRES_APP_PASSWORD; do
  [ -z "${!var:-}" ] ||
    die "${var} is set in the environment, where PostgreSQL would keep it: put it in a file (a Secret mounted read-only) and set ${var}_FILE"
done
APP_USER=${POSTGRES_APP_USER:-}
if [ -n "$APP_USER" ] && [ -z "${POSTGRES_APP_PASSWORD_FILE:-}" ]; then
  die "POSTGRES_APP_USER is set but POSTGRES_APP_PASSWORD_FILE is not: set it to the file holding the role's password"
fi

# read_secret FILE: the first line of FILE (a password), or die if it is unreadable or empty.
read_secret() {
  local line=
  [ -r "$1" ] || die "cannot read ${1} as uid $(id -u): mount it readable by group $(id -g) (fsGroup, mode 0440)"
  IFS= read -r line <"$1" || true # a last line without a line break is read all the same
  [ -n "$line" ] || die "${1} has no password on its first line"
  printf '%s' "$line"
}
TLS_ARGS=()
if [ -n "${POSTGRES_TLS_DIR:-}" ]; then
  for f in tls.crt tls.key; do
    [ -r "${POSTGRES_TLS_DIR}/${f}" ] || die "POSTGRES_TLS_DIR=${POSTGRES_TLS_DIR} has no readable ${f}"
  done
  TLS_ARGS=(-c ssl=on -c "ssl_cert_file=${POSTGRES_TLS_DIR}/tls.crt" -c "ssl_key_file=${POSTGRES_TLS_DIR}/tls.key"
    -c ssl_min_protocol_version=TLSv1.2)
fi

init_cluster() {
  [ -n "${POSTGRES_PASSWORD_FILE:-}" ] ||
    die "POSTGRES_PASSWORD_FILE is not set: set it to the file holding the superuser's password (TCP logins need one; initdb has not run)"
  local parent tmp pwfile app_password=
  # Read (and checked) before initdb, so that a missing file stops here with nothing made.
  read_secret "$POSTGRES_PASSWORD_FILE" >/dev/null
  [ -z "$APP_USER" ] || app_password=$(read_secret "$POSTGRES_APP_PASSWORD_FILE")
  parent=$(dirname "$PGDATA")
  [ -w "$parent" ] ||
    die "${parent} is not writable by uid $(id -u): give the volume fsGroup: $(id -g), or start the container as root once"
  # initdb into a sibling and rename: a pod killed half-way through leaves no half-made PGDATA.
  tmp="${PGDATA}.initdb"
  rm -rf "$tmp"
  if [ -d "$PGDATA" ]; then
    [ -z "$(ls -A "$PGDATA")" ] || die "${PGDATA} is not empty and has no PG_VERSION: refusing to initdb over it"
    rmdir "$PGDATA"
  fi
  local first=()
  if [ "$POSTGRES_USER" = "$TEMPLATE_SUPERUSER" ] && [ -s "${STAMPEDE_PGDATA_TEMPLATE:-}/PG_VERSION" ]; then
    # The image's cluster, made at its build with the same initdb: a copy, then this pod's own
    # superuser password (the template's is a placeholder no pod keeps).
    log "copying ${STAMPEDE_PGDATA_TEMPLATE} to ${PGDATA} (user ${POSTGRES_USER}, database ${POSTGRES_DB})"
    cp -R "$STAMPEDE_PGDATA_TEMPLATE" "$tmp" || die "copying ${STAMPEDE_PGDATA_TEMPLATE} failed"
    chmod 0700 "$tmp"
    first+=("ALTER ROLE $(sql_ident "$POSTGRES_USER") PASSWORD $(sql_literal "$(read_secret "$POSTGRES_PASSWORD_FILE")")")
  else
    # initdb reads the first line of --pwfile; a copy of that line only, so that a file written
    # without a final line break, or with more after it, gives the same password.
    pwfile=$(mktemp)
    { read_secret "$POSTGRES_PASSWORD_FILE"; printf '\n'; } >"$pwfile"
    log "initdb ${PGDATA} (user ${POSTGRES_USER}, database ${POSTGRES_DB})"
    run_initdb "$tmp" "$POSTGRES_USER" "$pwfile" || { rm -f "$pwfile"; die "initdb failed"; }
    rm -f "$pwfile"
  fi
  cat >>"${tmp}/postgresql.conf" <<'CONF'

# stampede (postgres-entrypoint): a small test database that must still keep what it committed,
# because a chaos spec kills this pod and then checks every acknowledged row.
listen_addresses = '*'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 64MB
max_connections = 100
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
# The image has no LLVM (scripts/images/postgres-rootfs.sh).
jit = off
CONF
  # initdb's host lines cover only the loopback addresses; the services connect from other pods:
  # only the service's role, to its database, and over TLS when there is a certificate.
  local hosttype=host
  [ ${#TLS_ARGS[@]} -eq 0 ] || hosttype=hostssl
  if [ -n "$APP_USER" ]; then
    printf '%s %s %s all scram-sha-256\n' "$hosttype" "$POSTGRES_DB" "$APP_USER" >>"${tmp}/pg_hba.conf"
  else
    printf '%s all all all scram-sha-256\n' "$hosttype" >>"${tmp}/pg_hba.conf"
  fi
  local role db
  role=$(sql_ident "$APP_USER") db=$(sql_ident "$POSTGRES_DB")
  [ "$POSTGRES_DB" = postgres ] || first+=("CREATE DATABASE ${db} OWNER $(sql_ident "$POSTGRES_USER")")
  [ -z "$APP_USER" ] ||
    first+=("CREATE ROLE ${role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD $(sql_literal "$app_password")")
  [ ${#first[@]} -eq 0 ] || printf '%s\n' "${first[@]}" | single_user "$tmp" postgres ||
    die "setting the superuser's password, creating database ${POSTGRES_DB} or role ${APP_USER:-(none)} failed"
  if [ -n "$APP_USER" ]; then
    # public's CREATE is already revoked from PUBLIC (PostgreSQL 15); the schema named after the
    # role comes first in the default search_path ("$user", public).
    printf '%s\n' \
      "REVOKE ALL ON DATABASE ${db} FROM PUBLIC" \
      "GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${role}" \
      "CREATE SCHEMA ${role} AUTHORIZATION ${role}" |
      single_user "$tmp" "$POSTGRES_DB" || die "creating schema ${APP_USER} failed"
  fi
  mv "$tmp" "$PGDATA"
  log "cluster ready in ${PGDATA}"
}

[ -s "${PGDATA}/PG_VERSION" ] || init_cluster
exec postgres -D "$PGDATA" "${TLS_ARGS[@]}" "$@"
