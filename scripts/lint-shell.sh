#!/usr/bin/env bash
# lint-shell.sh [FILE...]: shellcheck over stampede's shell scripts (by default every *.sh under
# scripts/, .ci/ and targets/, and every extension-less file there whose first line names sh or
# bash), run by scripts/test.sh (make test). shellcheck comes from Debian's package, installed
# when missing like PostgreSQL's binaries (scripts/ensure-postgres.sh). Every finding fails,
# notes included; a finding that is wrong for one line is disabled on that line with a comment
# that says why.
#
# Before the scripts, it lints a planted warning and fails unless that is reported: a missing or
# broken shellcheck, or one given no file, cannot pass this as clean.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=shellcheck
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_shellcheck

# shell_scripts: the scripts to lint, one a line.
shell_scripts() {
  local f
  while IFS= read -r -d '' f; do
    case "$f" in
      *.sh) printf '%s\n' "$f" ;;
      *) head -n 1 "$f" | grep -qE '^#!(/usr/bin/env )?/?(usr/)?(bin/)?(ba)?sh( |$)' && printf '%s\n' "$f" ;;
    esac
  done < <(find "${REPO_ROOT}/scripts" "${REPO_ROOT}/.ci" "${REPO_ROOT}/targets" -type f -print0 2>/dev/null | LC_ALL=C sort -z)
  return 0
}

# lint FILE...: the one shellcheck command line, for the scripts and for the planted warning.
# -x -P SCRIPTDIR: follow `source` of lib.sh and versions.sh, so that their names are known.
lint() { shellcheck -x -P SCRIPTDIR "$@"; }

# planted: lint must report SC2086 (an unquoted expansion) in a script made to have one.
planted() {
  local dir out
  dir=$(mktemp -d "${TMPDIR:-/tmp}/stampede-shellcheck.XXXXXX")
  # shellcheck disable=SC2016 # the planted script's own $1 and $f, not this one's
  printf '#!/usr/bin/env bash\nf=$1\nrm -f $f\n' >"${dir}/planted.sh"
  if out=$(lint "${dir}/planted.sh" 2>&1); then
    rm -rf "$dir"
    die "shellcheck passed a script with an unquoted \$f: it cannot be trusted to lint (shellcheck --version: $(shellcheck --version | sed -n 's/^version: //p'))"
  fi
  rm -rf "$dir"
  grep -q SC2086 <<<"$out" || die "shellcheck failed on the planted script without naming SC2086: ${out}"
}

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(shell_scripts)
  # runc-capwrap is bash without .sh: finding it shows the shebang test works.
  printf '%s\n' "${files[@]}" | grep -q '/scripts/runc-capwrap$' || die "no shell script found by its first line under ${REPO_ROOT}/scripts (runc-capwrap should be)"
fi
planted
lint "${files[@]}"
log "${#files[@]} scripts clean ($(shellcheck --version | sed -n 's/^version: //p'))"
