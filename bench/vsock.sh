#!/usr/bin/env bash
# vsock.sh - host<->guest vsock throughput and round-trip latency: vessel's virtio-vsock
# (host side: its Unix socket and `CONNECT <port>`) against QEMU `-M microvm` with
# `vhost-vsock-device` (host side: AF_VSOCK through the host kernel's vhost_vsock), the
# same guest (the default image plus tests/guest_tools/vsock_tool in an appended
# initramfs), alternating the two run by run. Each boot measures, in this order:
#   host->guest: SIZE MiB into the guest's sink, from connect to the guest's report line;
#   guest->host: SIZE MiB from the guest's source, from connect to EOF on the host;
#   round trip: PINGS 1-byte messages echoed by the guest, one at a time (median).
# Prints medians (min-max) over RUNS and vessel/QEMU ratios. bench/vsock.py measures.
#
# Where this machine has no hardware-assisted /dev/kvm the bench re-runs itself inside the
# emulated KVM host (tests/kvmhost/run); figures from there compare only as ratios.
#
# Usage: bench/vsock.sh [VESSEL]
# Env:   RUNS=3 SIZE=64 (MiB) PINGS=500 TOOL=<dir of VESSEL>/tests/guest_tools/vsock_tool
#        KERNEL=images/out/vmlinuz INITRD=images/out/initrd.img BOOT_TIMEOUT=300 (s)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VESSEL=$(realpath "${1:-${VESSEL:-$ROOT/build/vessel}}")
RUNS=${RUNS:-3}
SIZE=${SIZE:-64}
PINGS=${PINGS:-500}
TOOL=${TOOL:-$(dirname "$VESSEL")/tests/guest_tools/vsock_tool}
[ -e "$TOOL" ] || TOOL=$ROOT/build-san/tests/guest_tools/vsock_tool
KERNEL=$(realpath "${KERNEL:-$ROOT/images/out/vmlinuz}")
INITRD=$(realpath "${INITRD:-$ROOT/images/out/initrd.img}")
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
PYTHON=/usr/bin/python3

. "$ROOT/bench/lib.sh"
for f in "$VESSEL" "$KERNEL" "$INITRD" "$TOOL" "$PYTHON"; do
	[ -e "$f" ] || die "$f missing (make builds build/vessel and images/out; ninja -C build-san builds vsock_tool)"
done
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

bench_kvm_host $((300 + 2 * RUNS * (BOOT_TIMEOUT + 300))) RUNS SIZE PINGS TOOL KERNEL INITRD \
	BOOT_TIMEOUT -- "$VESSEL"
host=$bench_host
[ -e /dev/vhost-vsock ] || modprobe vhost_vsock 2>/dev/null || true
[ -w /dev/vhost-vsock ] || die "/dev/vhost-vsock missing (modprobe vhost_vsock): QEMU's vhost-vsock-device needs it"

exec "$PYTHON" "$ROOT/bench/vsock.py" --vessel "$VESSEL" --kernel "$KERNEL" --initrd "$INITRD" \
	--tool "$TOOL" --runs "$RUNS" --size "$SIZE" --pings "$PINGS" --timeout "$BOOT_TIMEOUT" \
	--host "$host"
