# shellcheck shell=bash
# shellcheck disable=SC2034 # the scripts that source this file use the names, not this file
# Pinned versions of everything stampede builds or runs. Changing a line here changes the content
# hash of the images built from it, so they are rebuilt; everything else is reused.
# The Go module proxy is curated: some newest versions are refused or need a newer Go. These built
# together on Go 1.26.8 (shared/notes/offline-kind.md).

KIND_VERSION=v0.33.0
K8S_VERSION=v1.34.4            # cgroup v1 hosts: 1.35 needs failCgroupV1=false, 1.36+ containerd 2.x
ETCD_VERSION=v3.6.5
ETCD_IMAGE_TAG=3.6.5-0
COREDNS_VERSION=v1.12.1
CRICTL_VERSION=v1.34.0
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30   # v0.0.34 is refused by the proxy
PAUSE_IMAGE_TAG=3.10.1
TOXIPROXY_VERSION=v2.12.0
DEBIAN_SUITE=bookworm
# The stock node image online users get (kind v0.33.0's image for this Kubernetes version).
KIND_STOCK_NODE_IMAGE="kindest/node:${K8S_VERSION}"
