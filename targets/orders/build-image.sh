#!/usr/bin/env bash
# build-image.sh [--print]: build the orders API's image offline and print orders=IMAGE on
# stdout (logs on stderr), like scripts/build-image.sh, whose helpers it uses (scripts/images.sh).
#
#   stampede/orders:<hash>   Debian's python3, python3-psycopg2, gunicorn and ca-certificates on
#                            a minbase root filesystem (mmdebstrap, no pip, no registry), the
#                            package orders/ and gunicorn.conf.py under /app, uid 10001
#
# The tag is a hash of the image's inputs (the service's Python files, gunicorn.conf.py, this
# script, the image helpers and the pinned Debian suite), so an image already present is not
# rebuilt. --print only prints the reference.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=build-image-orders
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
source "${REPO_ROOT}/scripts/images.sh"

HERE="${REPO_ROOT}/targets/orders"
# The Debian packages of the image: the server, the driver, and the CAs libpq may need.
PACKAGES="python3,python3-psycopg2,gunicorn,ca-certificates"
# The uid the Deployment's runAsUser names (deploy/orders.yaml).
ORDERS_UID=10001

# app_files: the files copied into the image, relative to HERE, one a line: the package's
# Python files (never tests or __pycache__) and gunicorn's settings.
app_files() {
  (cd "$HERE" && find orders -name '*.py' -print | LC_ALL=C sort && echo gunicorn.conf.py)
}

image_ref() {
  local files=() f
  while IFS= read -r f; do files+=("${HERE}/${f}"); done < <(app_files)
  echo "stampede/orders:$(hash_inputs "${files[@]}" "${HERE}/build-image.sh" "${REPO_ROOT}/scripts/images.sh" "${REPO_ROOT}/scripts/versions.sh")"
}

build() {
  local image=$1 raw="${1}-rootfs" ctx f
  rootfs_image "$raw" "$PACKAGES"
  ctx=$(mktemp -d)
  while IFS= read -r f; do
    mkdir -p "${ctx}/app/$(dirname "$f")"
    cp "${HERE}/${f}" "${ctx}/app/${f}"
  done < <(app_files)
  cat >"${ctx}/Dockerfile" <<DOCKERFILE
FROM ${raw}
COPY app /app
# Bytecode compiled now: the root filesystem is read-only at run time. A user of the fixed uid,
# so that runAsNonRoot can check it and logs name it.
RUN python3 -m compileall -q /app && \\
    groupadd -g ${ORDERS_UID} orders && \\
    useradd -u ${ORDERS_UID} -g ${ORDERS_UID} -M -d /nonexistent -s /usr/sbin/nologin orders
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER ${ORDERS_UID}:${ORDERS_UID}
WORKDIR /app
EXPOSE 8080 9090
ENTRYPOINT ["gunicorn", "-c", "/app/gunicorn.conf.py"]
DOCKERFILE
  build_dockerfile "$image" "$ctx"
  rm -rf "$ctx"
  docker rmi "$raw" >/dev/null
}

main() {
  local print_only="" image start
  [ "${1:-}" = "--print" ] && { print_only=1; shift; }
  [ $# -eq 0 ] || die "usage: build-image.sh [--print]"
  image=$(image_ref)
  if [ -z "$print_only" ] && ! image_present "$image"; then
    docker_ok || die "no Docker engine answers: run scripts/host-setup.sh (make host-setup)"
    start=$SECONDS
    log "building ${image}"
    build "$image"
    log "built ${image} in $((SECONDS - start))s ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec))"
  fi
  echo "orders=${image}"
}

main "$@"
