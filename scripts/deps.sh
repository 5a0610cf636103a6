#!/usr/bin/env bash
# Installs the Debian packages vessel needs that are missing. Idempotent and quick when
# nothing is missing (one dpkg-query). Usage: scripts/deps.sh build|test|demo|bench|fuzz|images|clients|cri
set -euo pipefail

build=(meson ninja-build pkg-config gcc libjansson-dev libseccomp-dev liburing-dev libarchive-dev nettle-dev zlib1g-dev libzstd-dev libhttp-parser-dev)
demo=(busybox-static qemu-system-x86)
# podman and containerd driving vessel (tests/integration/test_{podman,containerd}.py, bench/clients.sh);
# uidmap's newuidmap/newgidmap map /etc/subuid ranges for rootless vessel and podman
# (tests/integration/test_rootless.py)
clients=(podman containerd netavark iptables uidmap)
# vessel's container networks (src/network/, tests/integration/test_network.py): the CNI
# plugins, and the iptables, ip and tc that bridge, portmap, firewall and bandwidth call
network=(containernetworking-plugins iptables iproute2)
# the kubelet's side of containerd's CRI (tests/integration/test_cri.py, bench/cri.sh): gRPC
# stubs generated from the CRI proto, the streaming server's websocket, a pod network from
# the CNI plugins, and a static libc for the pause program built at test time
cri=(containerd containernetworking-plugins python3-grpcio python3-grpc-tools python3-websocket libc6-dev)
# the jailer's tests (tests/integration/test_jail.py): a static probe built at test time,
# readelf to tell a static VMM binary, ip netns for --netns
jail=(libc6-dev binutils iproute2)
test=(libcriterion-dev python3-pytest python3-pytest-timeout python3-yaml busybox-static acpica-tools qemu-system-x86 "${clients[@]}" "${cri[@]}" "${network[@]}" "${jail[@]}")
bench=(crun runc hyperfine time busybox-static qemu-system-x86)
fuzz=(clang libclang-rt-14-dev)
images=(cpio kmod lz4 xz-utils zstd)

want=("${build[@]}")
for kind in "$@"; do
	case "$kind" in
	build) ;;
	demo) want+=("${demo[@]}") ;;
	test) want+=("${test[@]}") ;;
	bench) want+=("${bench[@]}") ;;
	fuzz) want+=("${fuzz[@]}") ;;
	images) want+=("${images[@]}") ;;
	clients) want+=("${clients[@]}") ;;
	cri) want+=("${cri[@]}") ;;
	*) echo "deps.sh: unknown kind '$kind'" >&2; exit 2 ;;
	esac
done

missing=()
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${want[@]}" 2>/dev/null | awk '$NF == "installed" {print $1}' || true)
for p in "${want[@]}"; do
	grep -qx "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "vessel needs these Debian packages: ${missing[*]}" >&2
	echo "run: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/vessel-apt.XXXXXX)
# An image may come with no package lists at all: update once, then retry.
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
	apt-get update -q >>"$log" 2>&1 || true
	apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1 || {
		tail -20 "$log" >&2
		echo "apt-get install failed (log: $log)" >&2
		exit 1
	}
fi
rm -f "$log"
