#!/usr/bin/env bash
# customize-base.sh ROOTFS: turn a Debian root filesystem into a kind node base, the way kind's
# images/base/Dockerfile does, but from Debian's containerd/runc/CNI plugins instead of downloads.
# KIND_SRC is the pinned kind module's source (its images/base/files are copied in).
set -o errexit -o nounset -o pipefail
R="${1:?usage: $0 ROOTFS}"
F="${KIND_SRC:?KIND_SRC unset}/images/base/files"

install -d -m 0755 "$R/kind" "$R/kind/bin" "$R/LICENSES" "$R/etc/systemd/system/kubelet.service.d" \
  "$R/etc/kubernetes/manifests" "$R/opt/cni/bin" "$R/usr/local/sbin"
install -m 0755 "$F"/usr/local/bin/* "$R/usr/local/bin/"
install -m 0755 "$F"/kind/bin/* "$R/kind/bin/"
install -m 0644 "$F"/kind/README.txt "$R/kind/"
install -m 0644 "$F"/etc/crictl.yaml "$R/etc/"
install -m 0644 "$F"/etc/containerd/* "$R/etc/containerd/"
install -m 0644 "$F"/etc/default/* "$R/etc/default/"
install -m 0644 "$F"/etc/sysctl.d/* "$R/etc/sysctl.d/"
# Files only: the *.* glob also matches the kubelet.service.d directory, which install refuses.
find "$F/etc/systemd/system" -maxdepth 1 -type f -exec install -m 0644 {} "$R/etc/systemd/system/" \;
install -m 0644 "$F"/etc/systemd/system/kubelet.service.d/* "$R/etc/systemd/system/kubelet.service.d/"

# Debian's binaries where kind's units and scripts expect them.
ln -sf /usr/bin/containerd "$R/usr/local/bin/containerd"
ln -sf /usr/bin/ctr "$R/usr/local/bin/ctr"
ln -sf /usr/bin/containerd-shim-runc-v2 "$R/usr/local/bin/containerd-shim-runc-v2"
ln -sf /usr/sbin/runc "$R/usr/local/sbin/runc"
for p in host-local loopback ptp portmap bridge; do ln -sf "/usr/lib/cni/$p" "$R/opt/cni/bin/$p"; done

# The node's CRI: the kubelet asks for oom_score_adj -998 for static pods, which runc cannot set on
# a host whose capability bounding set lacks CAP_SYS_RESOURCE ("can't get final child's PID from
# pipe: EOF"). restrict_oom_score_adj clamps it instead.
sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$R/etc/containerd/config.toml"
sed -i -E "s#sandbox_image = \".*\"#sandbox_image = \"${PAUSE_IMAGE:?}\"#" "$R/etc/containerd/config.toml"
# fuse-overlayfs is only for rootless hosts and Debian has no snapshotter plugin for it.
rm -f "$R/etc/systemd/system/containerd-fuse-overlayfs.service"

# The base OCI spec, as kind's Dockerfile generates it, with kind's product-files hook.
chroot "$R" ctr oci spec |
  jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
  jq 'del(.process.rlimits)' >"$R/etc/containerd/cri-base.json"

# systemd in a container: the pruning kind's Dockerfile does.
find "$R/lib/systemd/system/sysinit.target.wants/" -name "systemd-tmpfiles-setup.service" -delete
rm -f "$R"/lib/systemd/system/multi-user.target.wants/* "$R"/etc/systemd/system/*.wants/* \
  "$R"/lib/systemd/system/local-fs.target.wants/* "$R"/lib/systemd/system/sockets.target.wants/*udev* \
  "$R"/lib/systemd/system/sockets.target.wants/*initctl* "$R"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>"$R/etc/systemd/journald.conf"
ln -sf /usr/lib/systemd/systemd "$R/sbin/init"
chroot "$R" systemctl enable kubelet.service containerd.service undo-mount-hacks.service
chroot "$R" systemctl mask systemd-binfmt.service
