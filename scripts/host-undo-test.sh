#!/usr/bin/env bash
# host-undo-test.sh: host setup followed by host undo leaves iptables (IPv4 and IPv6), the sysctls
# host setup touches (net.ipv4.ip_forward, the inotify limits), the system's Docker units' entries
# under /etc/systemd/system, and /etc/docker byte-identical; the guard drops what leaves
# stampede's bridge and new connections from it to the host, and nothing else; setups take turns
# (the host lock), and a setup with a new config leaves an engine that runs containers alone.
#
# It runs the real scripts, with a real dockerd, inside network and mount namespaces of its own:
# a fresh netns has its own iptables and ip_forward, so the test can start from a known state and
# compare exactly, and the machine's own engine, rules and clusters are not touched. What a netns
# does not separate is separated in the mount namespace: the inotify limits are files of the test's
# bind-mounted over /proc/sys (starting at Debian's defaults, so that setup raises them), and
# /etc/systemd/system is a copy of the host's bind-mounted over it. Needs root, unshare and
# dockerd; says so in one line and passes as skipped otherwise.
#
# A third pass plants an ip_forward change after undo (STAMPEDE_UNDO_TEST_PLANT=ip_forward) and
# must fail, naming it: the comparison is shown able to fail.
set -o errexit -o nounset -o pipefail
LOG_PREFIX=host-undo-test
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

skip() { log "SKIP: $*"; exit 0; }
fail() { log "FAIL: $*"; exit 1; }

if [ -z "${STAMPEDE_IN_TEST_NS:-}" ]; then
  is_root || skip "needs root (iptables, a dockerd of its own)"
  command -v unshare >/dev/null 2>&1 || skip "needs unshare (util-linux)"
  command -v dockerd >/dev/null 2>&1 || skip "needs dockerd (scripts/host-setup.sh installs docker.io)"
  command -v iptables >/dev/null 2>&1 || skip "needs iptables"
  # Two starting points, each in namespaces of its own: a host with rules of other software in
  # place, and a host with no iptables table at all (where dockerd creates filter and nat).
  for start in primed empty; do
    unshare --net --mount --propagation private env STAMPEDE_IN_TEST_NS="$start" "$0" "$@" || exit 1
  done
  log "planted: ip_forward changed after undo must fail the comparison"
  out=$(unshare --net --mount --propagation private env STAMPEDE_IN_TEST_NS=empty STAMPEDE_UNDO_TEST_PLANT=ip_forward "$0" "$@" 2>&1) &&
    { printf '%s\n' "$out" >&2; fail "the planted ip_forward change passed the comparison"; }
  grep -q 'FAIL: sysctls differ after undo.*net.ipv4.ip_forward' <<<"$out" ||
    { printf '%s\n' "$out" >&2; fail "the planted run failed, but not on ip_forward"; }
  log "PASS: the planted ip_forward change failed the comparison"
  exit 0
fi

# Inside the namespaces: hide the machine's engines and containerd, use state of our own.
unset DOCKER_HOST
for sock in /run/docker.sock /run/containerd/containerd.sock; do
  if [ -S "$sock" ]; then mount --bind /dev/null "$sock"; fi
done
work=$(mktemp -d /var/tmp/stampede-undo-test.XXXXXX)
# shellcheck disable=SC2317 # called by the trap below
cleanup() {
  local pid bg=()
  # A setup still waiting for the lock, the listener: end this test's own jobs first, then its
  # engine, which writes under work until it has exited.
  exec 7>&-
  mapfile -t bg < <(jobs -p)
  [ ${#bg[@]} -eq 0 ] || kill "${bg[@]}" 2>/dev/null || true
  wait
  if pid=$(cat "${work}/run/dockerd.pid" 2>/dev/null) && kill "$pid" 2>/dev/null; then
    retry_until 60 "the test's dockerd ${pid} to exit" bash -c "! kill -0 ${pid}" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
export STAMPEDE_STATE="${work}/state" STAMPEDE_RUN="${work}/run" STAMPEDE_DOCKER_SOCK="${work}/run/docker.sock" \
  STAMPEDE_HOST_LOCK="${work}/host.lock"
ip link set lo up
# Forwarding off, as on a fresh host: dockerd turns it on, and undo must turn it off again.
echo 0 >/proc/sys/net/ipv4/ip_forward
for sysctl in max_user_instances=128 max_user_watches=8192; do
  printf '%s\n' "${sysctl#*=}" >"${work}/${sysctl%=*}"
  mount --bind "${work}/${sysctl%=*}" "/proc/sys/fs/inotify/${sysctl%=*}"
done
mkdir -p "${work}/systemd" "$SYSTEMD_ETC"
cp -a "${SYSTEMD_ETC}/." "${work}/systemd/"
mount --bind "${work}/systemd" "$SYSTEMD_ETC"
if [ "$STAMPEDE_IN_TEST_NS" = primed ]; then
  # A host's usual starting point: the tables exist, and rules of other software are in place
  # (a libvirt-like network's), which undo must leave alone.
  iptables -A FORWARD -i virbr9 -m comment --comment "someone else's network" -j ACCEPT
fi

etc_docker() { if [ -d /etc/docker ]; then (cd /etc/docker && find . -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %a %s' && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum); else echo absent; fi; }
units() { (cd "$SYSTEMD_ETC" && find . -printf '%p %y %m %l\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum); }
sysctls() { local n; for n in net.ipv4.ip_forward fs.inotify.max_user_instances fs.inotify.max_user_watches; do printf '%s=%s\n' "$n" "$(sysctl -n "$n")"; done; }
# probe_host_listener: a container on stampede's network cannot open a connection to a listener
# on the host's 0.0.0.0, and the guard's counter counts the attempt. Without the guard's INPUT
# rule the same probe connects: the refusal is the guard's, not a listener out of reach.
probe_host_listener() {
  local img=stampede-undo-probe root="${work}/probe-root" gw port=18080 f before after in_rule
  # The probe's image, from this host's bash, timeout and sleep with their libraries: no registry.
  for f in /bin/bash /usr/bin/timeout /usr/bin/sleep $(ldd /bin/bash /usr/bin/timeout /usr/bin/sleep | grep -o '/[^ :]*' | sort -u); do
    mkdir -p "${root}$(dirname "$f")"
    cp -L "$f" "${root}${f}"
  done
  tar -C "$root" -c . | docker import - "$img" >/dev/null
  docker run -d --name probe --network stampede "$img" /usr/bin/sleep infinity >/dev/null
  gw=$(docker network inspect stampede -f '{{(index .IPAM.Config 0).Gateway}}')
  perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => $ARGV[0], Listen => 16, ReuseAddr => 1) or die "listen: $!\n"; while ($c = $s->accept) { close $c }' "$port" &
  retry_until 10 "the host's listener on 0.0.0.0:${port}" bash -c "exec 3<>/dev/tcp/127.0.0.1/${port}" || fail "the host's listener did not come up"
  probe() { docker exec probe /usr/bin/timeout 3 /bin/bash -c "exec 3<>/dev/tcp/${gw}/${port}" 2>/dev/null; }
  in_rule=(-i stampede0 -m conntrack --ctstate NEW -m comment --comment stampede-egress-guard -j DROP)
  iptables -w -D INPUT "${in_rule[@]}" || fail "no guard rule in INPUT: $(iptables -S INPUT)"
  probe || fail "without the guard's INPUT rule the probe cannot reach ${gw}:${port} either: the refusal below would prove nothing"
  "${REPO_ROOT}/scripts/egress-guard.sh" install 2>/dev/null
  before=$("${REPO_ROOT}/scripts/egress-guard.sh" count)
  ! probe || fail "a container on stampede's bridge opened a connection to the host's listener on 0.0.0.0:${port} (${gw})"
  after=$("${REPO_ROOT}/scripts/egress-guard.sh" count)
  [ "$after" -gt "$before" ] || fail "the guard refused the probe but its counter did not move (${before} -> ${after})"
  log "the guard refused a connection from the bridge to the host's 0.0.0.0:${port} and counted it (${before} -> ${after})"
}

# parallel_setups: setups take turns: one waits while another holds the host lock, and two at once
# both succeed with the engine left running, not restarted, and nothing recorded twice.
parallel_setups() {
  local pid_before setup a b
  pid_before=$(cat "${STAMPEDE_RUN}/dockerd.pid")
  exec 7>"$STAMPEDE_HOST_LOCK"
  flock 7
  # 7>&-: a child holding the test's lock description would hold the lock itself.
  "${REPO_ROOT}/scripts/host-setup.sh" 7>&- 2>"${work}/waiting.log" &
  setup=$!
  retry_until 30 "a setup to wait for the host lock" grep -q 'waiting for another host setup or undo' "${work}/waiting.log" ||
    fail "a setup did not wait for the host lock: $(cat "${work}/waiting.log")"
  kill -0 "$setup" 2>/dev/null || fail "a setup ended while another held the host lock: $(cat "${work}/waiting.log")"
  exec 7>&-
  wait "$setup" || fail "the setup that waited for the host lock failed: $(cat "${work}/waiting.log")"
  "${REPO_ROOT}/scripts/host-setup.sh" 2>"${work}/a.log" &
  a=$!
  "${REPO_ROOT}/scripts/host-setup.sh" 2>"${work}/b.log" &
  b=$!
  wait "$a" || fail "one of two setups at once failed: $(cat "${work}/a.log")"
  wait "$b" || fail "one of two setups at once failed: $(cat "${work}/b.log")"
  [ "$(cat "${STAMPEDE_RUN}/dockerd.pid")" = "$pid_before" ] || fail "setups at once restarted the engine"
  [ -z "$(sort "$HOST_CHANGES" | uniq -d)" ] || fail "setups at once recorded a change twice: $(sort "$HOST_CHANGES" | uniq -d)"
  log "setups took turns: one waited for the lock, two at once passed, the engine (pid ${pid_before}) kept running"
}

# busy_engine_keeps_running: a setup that finds the engine's config out of date leaves an engine
# that runs containers (other runs' clusters) as it is; once none runs, it applies the config.
busy_engine_keeps_running() {
  local pid_before out config="${STAMPEDE_STATE}/daemon.json"
  pid_before=$(cat "${STAMPEDE_RUN}/dockerd.pid")
  # As if an older stampede had written it.
  jq '.dns = ["127.0.0.2"]' "$config" >"${config}.old" && mv "${config}.old" "$config"
  out=$("${REPO_ROOT}/scripts/host-setup.sh" 2>&1) || fail "setup failed on an engine that runs containers: ${out}"
  grep -q 'its new config waits until none runs' <<<"$out" || fail "setup did not say why it kept the engine: ${out}"
  [ "$(cat "${STAMPEDE_RUN}/dockerd.pid")" = "$pid_before" ] || fail "setup restarted an engine that runs containers"
  [ "$(docker inspect -f '{{.State.Running}}' probe)" = true ] || fail "the probe container stopped during setup"
  docker rm -f probe >/dev/null
  out=$("${REPO_ROOT}/scripts/host-setup.sh" 2>&1) || fail "setup failed on an idle engine: ${out}"
  [ "$(cat "${STAMPEDE_RUN}/dockerd.pid")" != "$pid_before" ] || fail "setup did not apply the new config to an idle engine: ${out}"
  [ "$(jq -r '.dns[0]' "$config")" = 127.0.0.1 ] || fail "setup did not write the new config: $(cat "$config")"
  log "a setup with a new config kept an engine that ran a container, and restarted it once idle"
}

# non_root_fails_closed: a user who cannot check the guard gets one line and no run, unless
# STAMPEDE_NO_GUARD=1 says to go on without it.
non_root_fails_closed() {
  local sock="${STAMPEDE_DOCKER_SOCK}" mode out
  mode=$(stat -c %a "$sock")
  # The engine must answer this user, so that only the guard stands in the way.
  chmod 0711 "$work"
  chmod 0666 "$sock"
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/nonexistent "$@" "${REPO_ROOT}/scripts/host-setup.sh" 2>&1; }
  if out=$(as_nobody); then
    chmod "$mode" "$sock"
    fail "a user who cannot check the egress guard was let through: ${out}"
  fi
  grep -q 'ERROR: not root, and the egress guard cannot be checked' <<<"$out" || { chmod "$mode" "$sock"; fail "a non-root setup failed without saying why: ${out}"; }
  out=$(as_nobody STAMPEDE_NO_GUARD=1) || { chmod "$mode" "$sock"; fail "STAMPEDE_NO_GUARD=1 did not let a non-root setup through: ${out}"; }
  chmod "$mode" "$sock"
  log "without root the setup failed closed, and went on with STAMPEDE_NO_GUARD=1"
}

v4_before=$(iptables_state v4); v6_before=$(iptables_state v6); etc_before=$(etc_docker)
units_before=$(units); sysctls_before=$(sysctls)

log "host setup in a fresh network namespace (${STAMPEDE_IN_TEST_NS} start)"
"${REPO_ROOT}/scripts/host-setup.sh"
export DOCKER_HOST="unix://${STAMPEDE_DOCKER_SOCK}"
docker info >/dev/null || fail "stampede's engine does not answer after host setup"
"${REPO_ROOT}/scripts/egress-guard.sh" check || fail "the egress guard is not in place"
# What a run creates: the network kind's nodes join (e2e/cluster), so that the engine adds its
# rules for the bridge, which undo must take back too.
docker network create --driver bridge -o com.docker.network.bridge.name=stampede0 \
  -o com.docker.network.bridge.enable_ip_masquerade=false stampede >/dev/null
# Each comparison below proves something only if setup changed what it compares.
[ "$(iptables_state v4)" != "$v4_before" ] || fail "host setup changed no rule: the comparison below would prove nothing"
[ "$(sysctls)" != "$sysctls_before" ] || fail "host setup changed no sysctl: the comparison below would prove nothing"
[ "$(sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "forwarding is off after host setup: the ip_forward comparison would prove nothing"
if [ -e /lib/systemd/system/docker.service ]; then
  [ "$(readlink "${SYSTEMD_ETC}/docker.service")" = /dev/null ] || fail "docker.service is not masked after host setup"
  ! compgen -G "${SYSTEMD_ETC}/*.wants/docker.service" >/dev/null || fail "docker.service is still enabled after host setup: $(ls "${SYSTEMD_ETC}"/*.wants/docker.service)"
fi
iptables -S DOCKER-USER | grep -q -- '-i stampede0 ! -o stampede0' || fail "the guard does not match stampede's bridge"
if iptables -S DOCKER-USER | grep -- '-j DROP' | grep -qv -- '-i stampede0'; then
  fail "the guard drops traffic of other networks: $(iptables -S DOCKER-USER)"
fi
if iptables -S INPUT | grep -- '-j DROP' | grep -qv -- '-i stampede0'; then
  fail "the guard drops input of other interfaces: $(iptables -S INPUT)"
fi

if [ -z "${STAMPEDE_UNDO_TEST_PLANT:-}" ]; then
  probe_host_listener
  parallel_setups
  busy_engine_keeps_running
  non_root_fails_closed
fi

log "host undo"
"${REPO_ROOT}/scripts/host-undo.sh" --purge
if [ "${STAMPEDE_UNDO_TEST_PLANT:-}" = ip_forward ]; then
  log "planting: net.ipv4.ip_forward=1 after undo"
  echo 1 >/proc/sys/net/ipv4/ip_forward
fi
v4_after=$(iptables_state v4); v6_after=$(iptables_state v6); etc_after=$(etc_docker)
units_after=$(units); sysctls_after=$(sysctls)
[ "$v4_after" = "$v4_before" ] || fail "IPv4 rules differ after undo: $(diff <(echo "$v4_before") <(echo "$v4_after"))"
[ "$v6_after" = "$v6_before" ] || fail "IPv6 rules differ after undo: $(diff <(echo "$v6_before") <(echo "$v6_after"))"
[ "$sysctls_after" = "$sysctls_before" ] || fail "sysctls differ after undo: $(diff <(echo "$sysctls_before") <(echo "$sysctls_after") | tr '\n' ' ')"
[ "$units_after" = "$units_before" ] || fail "${SYSTEMD_ETC} differs after undo: $(diff <(echo "$units_before") <(echo "$units_after"))"
[ "$etc_after" = "$etc_before" ] || fail "/etc/docker differs after undo"
[ ! -e "$STAMPEDE_STATE" ] || fail "${STAMPEDE_STATE} is left after undo --purge: $(ls -A "$STAMPEDE_STATE")"
log "PASS (${STAMPEDE_IN_TEST_NS} start): iptables (v4 $(wc -l <<<"$v4_after") lines, v6 $(wc -l <<<"$v6_after") lines), $(wc -l <<<"$sysctls_after") sysctls, ${SYSTEMD_ETC} ($(wc -l <<<"$units_after") lines) and /etc/docker are byte-identical after host setup and undo"
