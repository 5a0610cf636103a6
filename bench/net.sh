#!/usr/bin/env bash
# net.sh - guest-to-host network throughput over a tap: vessel against QEMU `-M microvm`
# (virtio-mmio, vhost off) running the same tiny guest driver (tests/guests/virtio-net.elf,
# vnet.only=bench), alternating the two in one run. The guest sends FRAMES frames of one size
# back to back; frames above 1514 bytes are single TSO segments (HOST_TSO4, 64 KiB) that the
# host takes whole. The host end is a tap in a network namespace the script makes; the frames
# go to a MAC nobody has, so the host counts them on the tap (rx_packets) and drops them:
# nothing leaves the namespace. Throughput = payload bytes / host wall time between the
# guest's `TX START` and `TX END` lines. Prints medians (min-max) and vessel/QEMU ratios.
#
# Usage: bench/net.sh [VESSEL]   Env: RUNS=5 SMALL_FRAMES=20000 BIG_FRAMES=3000
#                                     GUEST=<dir of VESSEL>/tests/guests/virtio-net.elf
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VESSEL=${1:-${VESSEL:-$ROOT/build/vessel}}
RUNS=${RUNS:-5}
SMALL_FRAMES=${SMALL_FRAMES:-20000}
BIG_FRAMES=${BIG_FRAMES:-3000}
GUEST=${GUEST:-$(dirname "$VESSEL")/tests/guests/virtio-net.elf}
if [ ! -e "$GUEST" ] && [ -e "$ROOT/build-san/tests/guests/virtio-net.elf" ]; then
	GUEST=$ROOT/build-san/tests/guests/virtio-net.elf
fi

for f in "$VESSEL" "$GUEST"; do
	[ -e "$f" ] || { echo "net.sh: $f missing (make; ninja -C build-san builds the guests)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "net.sh: qemu-system-x86_64 missing" >&2; exit 1; }
command -v ip >/dev/null || { echo "net.sh: ip (iproute2) missing" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "net.sh: /dev/kvm not usable" >&2; exit 1; }
[ -w /dev/net/tun ] || { echo "net.sh: /dev/net/tun not usable (run as root)" >&2; exit 1; }

NS=vsbench-net-$$
TAP=vbtap0
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev "$TAP" mode tap
ip -n "$NS" addr add 10.99.0.1/24 dev "$TAP"
ip -n "$NS" link set "$TAP" up

/usr/bin/python3 - "$RUNS" "$SMALL_FRAMES" "$BIG_FRAMES" "$GUEST" "$VESSEL" "$NS" "$TAP" <<'PY'
import os, select, statistics, subprocess, sys, time

runs, small, big, guest, vessel, ns, tap = (int(sys.argv[1]), int(sys.argv[2]),
                                            int(sys.argv[3]), *sys.argv[4:])
TIMEOUT = 120.0
sizes = ((1514, small, "1514-byte frames"), (65514, big, "64 KiB TSO frames"))


def cmd(vmm, size, frames):
    args = f"vnet.only=bench vnet.frames={frames} vnet.size={size}"
    pre = ["ip", "netns", "exec", ns]
    if vmm == "vessel":
        return pre + [vessel, "vm", "run", "--kernel", guest, "--net", f"tap={tap}",
                      "--cmdline", args]
    return pre + ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "host",
                  "-m", "128", "-display", "none", "-nodefaults", "-no-reboot",
                  "-serial", "stdio", "-global", "virtio-mmio.force-legacy=false",
                  "-device", "isa-debug-exit",
                  "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no,vhost=off",
                  "-device", "virtio-net-device,netdev=n0", "-kernel", guest, "-append", args]


def counter(name):
    r = subprocess.run(["ip", "netns", "exec", ns, "cat",
                        f"/sys/class/net/{tap}/statistics/{name}"],
                       capture_output=True, text=True, check=True)
    return int(r.stdout)


def once(vmm, size, frames):
    """MB/s (payload bytes / wall time from TX START to TX END as the host saw them)"""
    rx0 = counter("rx_packets")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd(vmm, size, frames), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf, marks = b"", {}
    while True:
        left = TIMEOUT - (time.monotonic() - t0)
        if left <= 0:
            p.kill()
            p.wait()
            raise SystemExit(f"net.sh: {vmm} timed out after {TIMEOUT} s")
        r, _, _ = select.select([p.stdout], [], [], left)
        data = os.read(p.stdout.fileno(), 65536) if r else b""
        if not data:
            break
        now = time.monotonic()
        buf += data
        for key in (b"TX START", b"TX END"):
            if key in buf and key not in marks:
                marks[key] = now
    p.wait()
    err = p.stderr.read().decode(errors="replace")
    if len(marks) != 2 or b"FAIL" in buf:
        raise SystemExit(f"net.sh: {vmm} (exit {p.returncode}): {buf[-300:]!r} {err[-300:]}")
    got = counter("rx_packets") - rx0
    if got < frames:
        raise SystemExit(f"net.sh: {vmm}: the tap counted {got} of {frames} frames")
    secs = marks[b"TX END"] - marks[b"TX START"]
    return frames * size / secs / 1e6


load0 = os.getloadavg()[0]
res = {(vmm, size): [] for vmm in ("vessel", "qemu-microvm") for size, _, _ in sizes}
for i in range(runs):
    for size, frames, _ in sizes:
        order = ("vessel", "qemu-microvm") if i % 2 == 0 else ("qemu-microvm", "vessel")
        for vmm in order:
            res[(vmm, size)].append(once(vmm, size, frames))

print(f"net: {runs} runs each, alternating; guest {os.path.basename(guest)} (vnet.only=bench), "
      "guest -> host over a tap, QEMU vhost=off")
print("load average before/after: %.2f / %.2f" % (load0, os.getloadavg()[0]))
print(f"kvm: {next((m for m in ('kvm_intel', 'kvm_amd', 'kvm_pvm') if os.path.isdir('/sys/module/' + m)), '?')}")
print(f"{'figure (MB/s)':<34}{'vessel':>22}{'qemu-microvm':>22}{'ratio':>9}")
ratios = []
for size, frames, label in sizes:
    cells, med = [], {}
    for vmm in ("vessel", "qemu-microvm"):
        v = res[(vmm, size)]
        med[vmm] = statistics.median(v)
        cells.append(f"{med[vmm]:.1f} ({min(v):.1f}-{max(v):.1f})")
    ratio = med["vessel"] / med["qemu-microvm"]
    ratios.append((label, ratio))
    print(f"{f'{frames} x {label}':<34}{cells[0]:>22}{cells[1]:>22}{ratio:>8.3f}x")
for label, ratio in ratios:
    print(f"target {'met' if ratio >= 1.0 else 'MISSED'}: {label} vessel/QEMU {ratio:.3f}x >= 1.0x")
PY
