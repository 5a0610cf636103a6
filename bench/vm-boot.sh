#!/usr/bin/env bash
# vm-boot.sh - vessel against QEMU `-M microvm` (KVM) on the same tiny PVH guest, in one run,
# alternating the two so both see the same machine state. For each: wall ms from spawn to the
# guest's first serial line, from spawn to the VMM's exit, and the VMM's peak RSS (GNU time
# %M). Prints medians (min-max) and the vessel/QEMU ratios.
#
# Usage: bench/vm-boot.sh [VESSEL]     Env: RUNS=20 MEM=128 GUEST=<tests/guests/hello.elf>
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VESSEL=${1:-${VESSEL:-$ROOT/build/vessel}}
RUNS=${RUNS:-20}
MEM=${MEM:-128}
GUEST=${GUEST:-$(dirname "$VESSEL")/tests/guests/hello.elf}

for f in "$VESSEL" "$GUEST" /usr/bin/time; do
	[ -e "$f" ] || { echo "vm-boot.sh: $f missing (make; apt-get install time)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "vm-boot.sh: qemu-system-x86_64 missing" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "vm-boot.sh: /dev/kvm not usable" >&2; exit 1; }

exec /usr/bin/python3 - "$RUNS" "$MEM" "$GUEST" "$VESSEL" <<'PY'
import os, select, statistics, subprocess, sys, tempfile, time

runs, mem, guest, vessel = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
vmms = {
    "vessel": [vessel, "vm", "run", "--kernel", guest, "--memory", f"{mem}M"],
    "qemu-microvm": ["qemu-system-x86_64", "-M", "microvm", "-enable-kvm", "-cpu", "host",
                     "-m", str(mem), "-display", "none", "-nodefaults", "-no-reboot",
                     "-serial", "stdio", "-kernel", guest],
}
TIMEOUT = 30.0


def once(cmd):
    """(ms to the first line on stdout, ms to exit, peak RSS MiB, exit status)"""
    with tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        first, buf = None, b""
        while True:
            left = TIMEOUT - (time.monotonic() - t0)
            if left <= 0:
                p.kill()
                p.wait()
                raise SystemExit(f"vm-boot.sh: {cmd[0]} timed out after {TIMEOUT} s")
            r, _, _ = select.select([p.stdout], [], [], left)
            data = os.read(p.stdout.fileno(), 65536) if r else b""
            if not data:
                break
            buf += data
            if first is None and b"\n" in buf:
                first = time.monotonic() - t0
        rc = p.wait()
        end = time.monotonic() - t0
        kib = int(rss.read().strip().splitlines()[-1] or 0)
    if first is None:
        raise SystemExit(f"vm-boot.sh: {cmd[0]} printed no line (exit {rc}): {buf[:200]!r}")
    return first * 1e3, end * 1e3, kib / 1024, rc


load0 = os.getloadavg()[0]
results = {name: [] for name in vmms}
for i in range(runs):
    for name, cmd in vmms.items():
        results[name].append(once(cmd))

def column(name, k):
    return [r[k] for r in results[name]]

print(f"vm-boot: {runs} runs each, alternating; guest {os.path.basename(guest)}, {mem} MiB, 1 vCPU")
print("load average before/after: %.2f / %.2f (other work on the machine skews both VMMs)"
      % (load0, os.getloadavg()[0]))
print(f"kvm: {next((m for m in ('kvm_intel', 'kvm_amd', 'kvm_pvm') if os.path.isdir('/sys/module/' + m)), '?')}")
print(f"{'figure':<22}{'vessel':>24}{'qemu-microvm':>24}{'ratio':>9}")
for k, label in ((0, "first line (ms)"), (1, "exit (ms)"), (2, "peak RSS (MiB)")):
    med = {}
    cells = []
    for name in vmms:
        v = column(name, k)
        med[name] = statistics.median(v)
        cells.append(f"{med[name]:.2f} ({min(v):.2f}-{max(v):.2f})")
    print(f"{label:<22}{cells[0]:>24}{cells[1]:>24}{med['vessel'] / med['qemu-microvm']:>8.3f}x")
for name in vmms:
    codes = sorted(set(column(name, 3)))
    print(f"exit status {name}: {codes}")

# the promises in docs: spawn -> exit <= 5 ms and <= 0.15x QEMU, peak RSS <= 3 MiB (128 MiB guest)
exit_ms, qemu_exit_ms = statistics.median(column("vessel", 1)), statistics.median(column("qemu-microvm", 1))
rss = statistics.median(column("vessel", 2))
for ok, what in ((exit_ms <= 5, f"vessel spawn -> exit {exit_ms:.2f} ms <= 5 ms"),
                 (exit_ms <= 0.15 * qemu_exit_ms, f"vessel/QEMU exit {exit_ms / qemu_exit_ms:.3f}x <= 0.15x"),
                 (rss <= 3 or mem != 128, f"vessel peak RSS {rss:.2f} MiB <= 3 MiB")):
    print(f"target {'met' if ok else 'MISSED'}: {what}")
PY
