#!/usr/bin/env bash
# linux-boot.sh - vessel against QEMU `-M microvm` booting the same Linux kernel and initramfs
# (the default guest, images/out) with the same command line, vCPUs, memory and console
# (ttyS0 on the VMM's stdout), alternating the two round by round. For each, medians over
# ROUNDS boots of: spawn -> the guest's first console line, spawn -> the kernel's `Run /init
# as init process` line (the time-to-init figure), spawn -> the line init's command prints,
# spawn -> the VMM's exit; the VMM's peak RSS and its overhead (RSS minus the guest RAM the
# guest touched). Prints the vessel/QEMU ratios, the host and whether the targets are met
# (time to init <= 0.7x QEMU microvm, overhead <= 5 MiB). bench/linux-boot.py measures;
# bench/README.md says how.
#
# Where this machine has no hardware-assisted /dev/kvm (none, or kvm_pvm, where stock Linux
# cannot boot) the bench re-runs itself inside the emulated KVM host (tests/kvmhost/run).
#
# Usage: bench/linux-boot.sh [VESSEL]
# Env:   ROUNDS=3 WARMUP=1 CPUS=1 MEM=256 (MiB) KERNEL=images/out/vmlinuz
#        INITRD=images/out/initrd.img CMDLINE="console=ttyS0 panic=-1" BOOT_TIMEOUT=240 (s)
#        VERBOSE=1 (print every boot's console, host ms per line, and smaps summary to stderr)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VESSEL=$(realpath "${1:-${VESSEL:-$ROOT/build/vessel}}")
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}
CPUS=${CPUS:-1}
MEM=${MEM:-256}
KERNEL=$(realpath "${KERNEL:-$ROOT/images/out/vmlinuz}")
INITRD=$(realpath "${INITRD:-$ROOT/images/out/initrd.img}")
CMDLINE=${CMDLINE:-console=ttyS0 panic=-1}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}
PYTHON=/usr/bin/python3
export VESSEL ROUNDS WARMUP CPUS MEM KERNEL INITRD CMDLINE BOOT_TIMEOUT

. "$ROOT/bench/lib.sh"
for f in "$VESSEL" "$KERNEL" "$INITRD" "$PYTHON"; do
	[ -e "$f" ] || die "$f missing (make builds build/vessel and images/out)"
done
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

# every boot is bounded by BOOT_TIMEOUT; the emulated host itself takes ~30 s to start
bench_kvm_host $((120 + 2 * (ROUNDS + WARMUP) * BOOT_TIMEOUT)) -- "$VESSEL"
host=$bench_host

# Warm the page cache with both VMMs' binaries and the guest's files, so no boot pays
# the first read (on the emulated host that is 9p from the outer machine).
cat "$VESSEL" "$(command -v qemu-system-x86_64)" "$KERNEL" "$INITRD" >/dev/null
qemu-system-x86_64 --version >/dev/null

# linux-boot.py kills the VMM it runs on a timeout, Ctrl-C or SIGTERM and writes no file
exec "$PYTHON" "$ROOT/bench/linux-boot.py" --vessel "$VESSEL" --kernel "$KERNEL" --initrd "$INITRD" \
	--cmdline "$CMDLINE" --cpus "$CPUS" --mem "$MEM" --rounds "$ROUNDS" --warmup "$WARMUP" \
	--timeout "$BOOT_TIMEOUT" --host "$host" ${VERBOSE:+--verbose}
