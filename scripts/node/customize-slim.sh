#!/usr/bin/env bash
# customize-slim.sh ROOTFS: the small Debian rootfs that kube-proxy, cnid and local-path's helper
# pods run on; its iptables commands first select the node's backend (iptables-wrapper).
set -o errexit -o nounset -o pipefail
R="${1:?usage: $0 ROOTFS}"
install -m 0755 "$(dirname "${BASH_SOURCE[0]}")/iptables-wrapper" "$R/usr/sbin/iptables-wrapper"
for b in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf iptables-wrapper "$R/usr/sbin/$b"
done
