#!/usr/bin/env bash
# postgres-rootfs.sh ROOTFS: mmdebstrap customize hook for the postgres image (run on the host
# with the root filesystem's path). Leaves PostgreSQL's binaries and a postgres user with a fixed
# uid, and nothing that the entrypoint makes itself. (Directories under /run are made by the
# image's Dockerfile: mmdebstrap empties /run.)
set -o errexit -o nounset -o pipefail
root=$1
# A fixed number, so that a Pod's runAsUser/fsGroup can name it: the package's adduser picks
# whatever system uid is free at install time.
POSTGRES_UID=999

# Debian's package creates and configures a "main" cluster at install; the entrypoint runs its
# own initdb in PGDATA, so that cluster would only be dead weight with a different owner.
rm -rf "${root}/var/lib/postgresql/15" "${root}/etc/postgresql/15"

old_uid=$(awk -F: '$1 == "postgres" {print $3}' "${root}/etc/passwd")
old_gid=$(awk -F: '$1 == "postgres" {print $3}' "${root}/etc/group")
{ [ -n "$old_uid" ] && [ -n "$old_gid" ]; } || { echo "postgres-rootfs: no postgres user in the rootfs" >&2; exit 1; }
if [ "$old_uid" != "$POSTGRES_UID" ] || [ "$old_gid" != "$POSTGRES_UID" ]; then
  chroot "$root" groupmod -g "$POSTGRES_UID" postgres
  chroot "$root" usermod -u "$POSTGRES_UID" -g "$POSTGRES_UID" postgres
  find "$root" -xdev \( -uid "$old_uid" -o -gid "$old_gid" \) -exec chown -h "${POSTGRES_UID}:${POSTGRES_UID}" {} +
fi

# JIT compilation (LLVM) is a third of the image and only helps long analytic queries; the
# entrypoint sets jit = off, so postgres never loads it.
rm -rf "${root}"/usr/lib/x86_64-linux-gnu/libLLVM-* "${root}"/usr/lib/postgresql/15/lib/llvmjit* \
  "${root}"/usr/lib/postgresql/15/lib/bitcode
