#!/usr/bin/env bash
# apt-install-test.sh: stampede's apt installs (lib.sh apt_install) take turns, so that the
# temporary policy-rc.d, which keeps services from starting during an install, is in place for the
# whole of each install; one left by an install that was killed is taken back, and one of the
# administrator's is left alone.
#
# Runs lib.sh's apt_install with apt-get replaced by a stand-in on PATH that records whether
# policy-rc.d is there when its install starts and ends, and ends only when the test lets it: the
# thing under test is the turn-taking around apt, not apt. In a mount namespace of its own, with a
# tmpfs over /usr/sbin, so that the host's policy-rc.d is never touched. Needs root and unshare;
# says so in one line and passes as skipped otherwise.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=apt-install-test
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

skip() { log "SKIP: $*"; exit 0; }
fail() { log "FAIL: $*"; exit 1; }

if [ -z "${STAMPEDE_IN_TEST_NS:-}" ]; then
  is_root || skip "needs root (a mount namespace of its own)"
  command -v unshare >/dev/null 2>&1 || skip "needs unshare (util-linux)"
  exec unshare --mount --propagation private env STAMPEDE_IN_TEST_NS=1 "$0" "$@"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/stampede-apt-test.XXXXXX")
# shellcheck disable=SC2317 # called by the trap below
cleanup() { touch "${work}/release-a" "${work}/release-b" "${work}/release-c"; wait; rm -rf "$work"; }
trap cleanup EXIT
mount -t tmpfs tmpfs /usr/sbin
export STAMPEDE_APT_LOCK="${work}/apt.lock" STUB_DIR="$work"
mkdir -p "${work}/bin"
cat >"${work}/bin/apt-get" <<'STUB'
#!/usr/bin/env bash
# The stand-in for apt-get: `install ... NAME` notes policy-rc.d at its start and end, and ends
# when STUB_DIR/release-NAME exists.
[[ " $* " == *" install "* ]] || exit 0
name=${!#}
note() { if [ -x /usr/sbin/policy-rc.d ]; then echo "$1 policy-rc.d"; else echo "$1 none"; fi >>"${STUB_DIR}/${name}.log"; }
note start
until [ -e "${STUB_DIR}/release-${name}" ]; do sleep 0.1; done
note end
STUB
chmod +x "${work}/bin/apt-get"
export PATH="${work}/bin:${PATH}"

install_in_bg() { (apt_install "$1") 2>"${work}/$1.err" & }
wait_for() { retry_until 20 "$1" "${@:2}" || fail "timed out waiting for $1: $(cat "${work}"/*.err 2>/dev/null)"; }

log "two installs at once: the second waits for the first"
install_in_bg a; a=$!
wait_for "install a to start" grep -q start "${work}/a.log"
install_in_bg b; b=$!
wait_for "install b to wait for a, or to start" bash -c "grep -q 'waiting for another stampede apt install' '${work}/b.err' || [ -e '${work}/b.log' ]"
[ ! -e "${work}/b.log" ] || fail "install b started while a ran: $(cat "${work}/b.log")"
touch "${work}/release-a"
wait "$a" || fail "install a failed: $(cat "${work}/a.err")"
wait_for "install b to start" grep -q start "${work}/b.log"
touch "${work}/release-b"
wait "$b" || fail "install b failed: $(cat "${work}/b.err")"
for n in a b; do
  [ "$(cat "${work}/${n}.log")" = $'start policy-rc.d\nend policy-rc.d' ] ||
    fail "policy-rc.d was not in place for the whole of install ${n}: $(tr '\n' ' ' <"${work}/${n}.log")"
done
[ ! -e /usr/sbin/policy-rc.d ] || fail "policy-rc.d is left after both installs"

log "a policy-rc.d left by a killed install is taken back; the administrator's stays"
printf '#!/bin/sh\n%s\nexit 101\n' "$POLICY_MARK" >/usr/sbin/policy-rc.d
touch "${work}/release-c"
apt_install c 2>/dev/null
[ ! -e /usr/sbin/policy-rc.d ] || fail "a policy-rc.d with stampede's mark is left after an install"
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
rm -f "${work}/c.log"
apt_install c 2>/dev/null
[ "$(cat /usr/sbin/policy-rc.d)" = $'#!/bin/sh\nexit 101' ] || fail "the administrator's policy-rc.d was changed or removed"
log "PASS: installs took turns with policy-rc.d in place throughout; stampede's leftover removed, the administrator's kept"
