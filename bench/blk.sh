#!/usr/bin/env bash
# blk.sh - virtio-blk: vessel against QEMU `-M microvm` (KVM) with the same tiny guest driver
# (tests/guests/virtio-blk.elf in bench mode), the same image file and the same cache mode,
# alternating the two in one run. Figures: sequential read and write MB/s with large
# requests, 4 KiB random-read IOPS. Each is timed on the host from the guest's `BENCH START`
# line to its `BENCH END` line (boot and buffer set-up excluded). Prints medians (min-max)
# and vessel/QEMU ratios (higher is better for vessel).
#
# Usage: bench/blk.sh [VESSEL]
# Env: RUNS=5 CACHE=writeback|none SIZE_MIB=256 SEQ_BS=1M SEQ_DEPTH=4 SEQ_TOTAL=256M
#      RAND_DEPTH=32 RAND_TOTAL=40M DIR=<a directory on the disk to test; default /var/tmp>
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VESSEL=${1:-${VESSEL:-$ROOT/build/vessel}}
GUEST=${GUEST:-$(dirname "$VESSEL")/tests/guests/virtio-blk.elf}
[ -e "$GUEST" ] || GUEST=$ROOT/build-san/tests/guests/virtio-blk.elf

for f in "$VESSEL" "$GUEST"; do
	[ -e "$f" ] || { echo "blk.sh: $f missing (make; ninja builds tests/guests)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "blk.sh: qemu-system-x86_64 missing" >&2; exit 1; }
[ -w /dev/kvm ] || { echo "blk.sh: /dev/kvm not usable" >&2; exit 1; }
case "${CACHE:=writeback}" in writeback | none) ;; *) echo "blk.sh: CACHE=writeback|none" >&2; exit 2 ;; esac

exec /usr/bin/python3 - "$VESSEL" "$GUEST" <<'PY'
import os, select, statistics, subprocess, sys, tempfile, time

vessel, guest = sys.argv[1], sys.argv[2]
env = os.environ
runs = int(env.get("RUNS", "5"))
cache = env.get("CACHE", "writeback")
size_mib = int(env.get("SIZE_MIB", "256"))
seq = f"blk.bs={env.get('SEQ_BS', '1M')} blk.depth={env.get('SEQ_DEPTH', '4')} blk.total={env.get('SEQ_TOTAL', '256M')}"
rnd = f"blk.bs=4K blk.depth={env.get('RAND_DEPTH', '32')} blk.total={env.get('RAND_TOTAL', '40M')}"
figures = [  # (label, guest command line, unit, per-second of what)
    ("seq read MB/s", f"blk.bench=seqread {seq}", "bytes"),
    ("seq write MB/s", f"blk.bench=seqwrite {seq}", "bytes"),
    ("4K rand read IOPS", f"blk.bench=randread {rnd}", "ops"),
]
TIMEOUT = 300.0

workdir = tempfile.mkdtemp(prefix="vessel-blk-bench.", dir=env.get("DIR", "/var/tmp"))
image = os.path.join(workdir, "disk.img")
# Real data, not a sparse file: both VMMs read the same allocated blocks.
with open(image, "wb") as f:
    chunk = os.urandom(1 << 20)
    for _ in range(size_mib):
        f.write(chunk)
    f.flush()
    os.fsync(f.fileno())


def vmm_cmd(name, cmdline):
    if name == "vessel":
        return [vessel, "vm", "run", "--kernel", guest, "--memory", "128M", "--cmdline", cmdline,
                "--disk", image + (",direct" if cache == "none" else "")]
    return ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "host",
            "-m", "128", "-display", "none", "-nodefaults", "-no-reboot", "-serial", "stdio",
            "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit",
            "-kernel", guest, "-append", cmdline,
            "-drive", f"file={image},if=none,id=d0,format=raw,cache={cache}",
            "-device", "virtio-blk-device,drive=d0"]


def once(name, cmdline):
    """(seconds from BENCH START to BENCH END, the END line's ops, bytes, errors)"""
    cmd = vmm_cmd(name, cmdline)
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    buf, stamps, t0 = b"", {}, time.monotonic()
    try:
        while True:
            left = TIMEOUT - (time.monotonic() - t0)
            if left <= 0:
                raise SystemExit(f"blk.sh: {name} timed out after {TIMEOUT} s: {buf[-300:]!r}")
            r, _, _ = select.select([p.stdout], [], [], left)
            data = os.read(p.stdout.fileno(), 65536) if r else b""
            if not data:
                break
            buf += data
            now = time.monotonic()
            for key in (b"BENCH START", b"BENCH END"):
                if key in buf and key not in stamps:
                    stamps[key] = now
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    err = p.stderr.read().decode(errors="replace")
    end = [l for l in buf.decode(errors="replace").splitlines() if l.startswith("BENCH END:")]
    if len(stamps) != 2 or not end:
        raise SystemExit(f"blk.sh: {name} gave no BENCH END (exit {p.returncode}):\n"
                         f"{buf.decode(errors='replace')[-500:]}\n{err[-500:]}")
    kv = dict(w.split("=") for w in end[0].split(":", 1)[1].split())
    if int(kv["errors"]):
        raise SystemExit(f"blk.sh: {name}: {kv['errors']} requests failed")
    return stamps[b"BENCH END"] - stamps[b"BENCH START"], int(kv["ops"]), int(kv["bytes"])


load0 = os.getloadavg()[0]
names = ["vessel", "qemu-microvm"]
results = {(f[0], n): [] for f in figures for n in names}
try:
    for i in range(runs):
        for label, cmdline, unit in figures:
            # alternate, and swap who goes first each run
            for name in (names if i % 2 == 0 else names[::-1]):
                secs, ops, nbytes = once(name, cmdline)
                results[(label, name)].append(
                    (nbytes / 1e6 if unit == "bytes" else ops) / secs)
finally:
    os.unlink(image)
    os.rmdir(workdir)

print(f"blk: {runs} runs each, alternating; guest {os.path.basename(guest)} (polling driver), "
      f"{size_mib} MiB image, cache={cache} (vessel: {'direct' if cache == 'none' else 'page cache'})")
print(f"  sequential: {seq}; random: {rnd}")
print("load average before/after: %.2f / %.2f (other work on the machine skews both VMMs)"
      % (load0, os.getloadavg()[0]))
print(f"kvm: {next((m for m in ('kvm_intel', 'kvm_amd', 'kvm_pvm') if os.path.isdir('/sys/module/' + m)), '?')}")
print(f"{'figure':<20}{'vessel':>26}{'qemu-microvm':>26}{'ratio':>9}")
missed = []
for label, _, _ in figures:
    med, cells = {}, []
    for name in names:
        v = results[(label, name)]
        med[name] = statistics.median(v)
        cells.append(f"{med[name]:.0f} ({min(v):.0f}-{max(v):.0f})")
    ratio = med["vessel"] / med["qemu-microvm"]
    print(f"{label:<20}{cells[0]:>26}{cells[1]:>26}{ratio:>8.2f}x")
    if ratio < 1.0:
        missed.append(label)
print("target (>= 1.0x QEMU on every figure): " +
      ("met" if not missed else "MISSED on " + ", ".join(missed)))
PY
