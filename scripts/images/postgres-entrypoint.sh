#!/bin/bash
# postgres-entrypoint [POSTGRES_ARG...]: the entrypoint of the stampede/postgres image.
#
# On an empty PGDATA it runs initdb: superuser POSTGRES_USER (default postgres) with the password
# POSTGRES_PASSWORD (required), database POSTGRES_DB (default POSTGRES_USER), scram-sha-256 for
# every TCP connection, trust for the local socket (pg_isready, `kubectl exec ... psql`). Then it
# execs postgres, which becomes PID 1 and so gets the stop signal itself; the image's STOPSIGNAL is
# SIGINT (fast shutdown: SIGTERM would wait for the services' pooled connections to close).
#
# Volumes: PGDATA is a subdirectory of the mount (/var/lib/postgresql/data/pgdata) so that a
# lost+found or a mount point it cannot chmod does not stop initdb. Run it as uid 999 (postgres)
# on a volume that uid can write: kind's local-path volumes are 0777, other storage needs the Pod's
# fsGroup: 999. Started as root instead, it chowns PGDATA and drops to postgres itself.
set -o errexit -o nounset -o pipefail

log() { printf '%s postgres-entrypoint: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

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

init_cluster() {
  [ -n "${POSTGRES_PASSWORD:-}" ] ||
    die "POSTGRES_PASSWORD is empty: set it (TCP logins need a password; initdb has not run)"
  local parent tmp pwfile
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
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  log "initdb ${PGDATA} (user ${POSTGRES_USER}, database ${POSTGRES_DB})"
  initdb --pgdata="$tmp" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-instructions >&2 ||
    { rm -f "$pwfile"; die "initdb failed"; }
  rm -f "$pwfile"
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
  # initdb's host lines cover only the loopback addresses; the services connect from other pods.
  printf 'host all all all scram-sha-256\n' >>"${tmp}/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    printf 'CREATE DATABASE %s OWNER %s\n' "$(sql_ident "$POSTGRES_DB")" "$(sql_ident "$POSTGRES_USER")" |
      postgres --single -D "$tmp" postgres >/dev/null || die "creating database ${POSTGRES_DB} failed"
  fi
  mv "$tmp" "$PGDATA"
  log "initdb done"
}

[ -s "${PGDATA}/PG_VERSION" ] || init_cluster
exec postgres -D "$PGDATA" "$@"
