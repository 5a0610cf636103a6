#!/usr/bin/env bash
# migrate.sh - live migration of the default Linux guest, vessel against QEMU, in one run:
# the guest prints a heartbeat line every millisecond (as fast as its shell's `sleep 0.001`
# goes) on its console; each VMM moves it to a second process on this host over a Unix
# socket (vessel: `vm migrate-send` to a `vm migrate-receive`; QEMU: QMP `migrate` to a
# `-incoming unix:`), idle and while a background loop dirties 50 MiB/s, alternating
# vessel and QEMU. Figures: total time of the migration, downtime as each VMM reports it,
# downtime as the guest shows it (the longest gap between two heartbeat lines as the host
# reads them off the two consoles), bytes sent. Prints vessel/QEMU ratios.
#
# Usage: bench/migrate.sh [VESSEL]     Env: MEM=256 QEMU_MACHINE=microvm BOOT_TIMEOUT=300
#        DOWNTIME_MS=300 (both VMMs' downtime limit)
# Where this machine has no hardware-assisted /dev/kvm it re-runs itself inside the
# emulated KVM host (tests/kvmhost/run), as tests/kvm.sh does: figures there are TCG's.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VESSEL=$(realpath "${1:-${VESSEL:-$ROOT/build/vessel}}")
MEM=${MEM:-256}
QEMU_MACHINE=${QEMU_MACHINE:-microvm}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
DOWNTIME_MS=${DOWNTIME_MS:-300}
KERNEL=${KERNEL:-$ROOT/images/out/vmlinuz}
INITRD=${INITRD:-$ROOT/images/out/initrd.img}

. "$ROOT/bench/lib.sh"
for f in "$VESSEL" "$KERNEL" "$INITRD"; do [ -e "$f" ] || die "$f missing (make; make images)"; done
command -v curl >/dev/null || die "curl missing"

bench_kvm_host $((600 + 4 * BOOT_TIMEOUT)) MEM QEMU_MACHINE BOOT_TIMEOUT DOWNTIME_MS KERNEL INITRD \
	-- "$VESSEL"
QEMU=${QEMU:-$(command -v qemu-system-x86_64 || true)}
[ -n "$QEMU" ] || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

exec /usr/bin/python3 - "$VESSEL" "$QEMU" "$KERNEL" "$INITRD" "$MEM" "$QEMU_MACHINE" \
	"$BOOT_TIMEOUT" "$DOWNTIME_MS" <<'PY'
import os, re, subprocess, sys, tempfile, threading, time
from benchlib import Qmp, curl

vessel, qemu, kernel, initrd, mem, machine, boot_timeout, downtime_ms = sys.argv[1:9]
mem, boot_timeout, downtime_ms = int(mem), float(boot_timeout), int(downtime_ms)
BEAT = "i=0; while true; do echo H:$i; i=$((i+1)); sleep 0.001; done"
DIRTY = ("while true; do dd if=/dev/zero of=/dev/null bs=50M count=1 2>/dev/null; "
         "sleep 1; done & ")
work = tempfile.mkdtemp(prefix="vmigb", dir=os.environ.get("TMPDIR", "/tmp"))


def cmdline(dirty):
    return f'console=ttyS0 panic=-1 quiet -- sh -c "{DIRTY if dirty else ""}{BEAT}"'


class Console:
    """A VMM process's stdout, read by a thread that stamps every heartbeat line."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.beats = []  # (host monotonic time, n)
        self.buf = b""
        self.raw = b""  # everything, for the count across the move
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def read(self):
        while True:
            data = os.read(self.p.stdout.fileno(), 65536)
            if not data:
                return
            now = time.monotonic()
            self.raw += data
            self.buf += data
            *lines, self.buf = self.buf.split(b"\n")
            for l in lines:
                m = re.search(rb"H:(\d+)", l)
                if m:
                    self.beats.append((now, int(m.group(1))))

    def wait_beats(self, n, timeout):
        deadline = time.monotonic() + timeout
        base = len(self.beats)
        while len(self.beats) < base + n:
            if time.monotonic() > deadline or self.p.poll() is not None:
                if self.p.poll() is None:
                    self.p.kill()
                self.p.wait()
                raise SystemExit(f"migrate.sh: {len(self.beats) - base} of {n} heartbeats "
                                 f"in {timeout} s ({' '.join(self.p.args[:3])}, exit "
                                 f"{self.p.returncode}): {self.raw[-300:]!r}\n"
                                 f"{self.p.stderr.read()[-2000:].decode(errors='replace')}")
            time.sleep(0.01)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def guest_gaps(src, dst, t0, t1):
    """The guest's view (s): the switch's gap (the last heartbeat the source's console
    printed to the first the destination's did), the longest gap from t0 to t1 (pre-copy
    slows the guest too: dirty logging makes its writes fault), and the typical gap (the
    heartbeat's own period: the resolution of the other two)."""
    beats = sorted(b for b in src.beats + dst.beats if t0 <= b[0] <= t1)
    gaps = [b[0] - a[0] for a, b in zip(beats, beats[1:])]
    if not gaps or not src.beats or not dst.beats:
        return None, None, None
    # the count goes on from the source to the destination: no beat lost or repeated
    # (read from the two consoles' bytes joined: a line the switch split between them,
    # which the stamped lines above miss, is whole there)
    ns = [int(n) for n in re.findall(rb"H:(\d+)\r?\n", src.raw + dst.raw)]
    if not ns or ns != list(range(ns[0], ns[0] + len(ns))):
        odd = [(a, b) for a, b in zip(ns, ns[1:]) if b != a + 1]
        print(f"  warning: {src.p.args[0]}: heartbeats not consecutive across the move "
              f"({len(ns)} beats from {ns[:1]}; jumps {odd[:5]}; source's last bytes "
              f"{src.raw[-80:]!r}, destination's first {dst.raw[:80]!r})")
    switch = dst.beats[0][0] - src.beats[-1][0]
    gaps.sort()
    return switch, gaps[-1], gaps[len(gaps) // 2]


def vessel_run(dirty):
    sock = os.path.join(work, "v.sock")
    src = Console([vessel, "vm", "api", "--api-sock", sock])
    while not os.path.exists(sock):
        time.sleep(0.005)
    curl(sock, "PUT", "/boot-source", {"kernel_image_path": kernel, "initrd_path": initrd,
                                      "boot_args": cmdline(dirty)})
    curl(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mem})
    curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    src.wait_beats(20, boot_timeout)
    time.sleep(3 if dirty else 1)
    url = f"unix:{work}/vm.sock"
    dst = Console([vessel, "vm", "migrate-receive", "--listen", url])
    while not os.path.exists(url[5:]):
        time.sleep(0.005)
    t0 = time.monotonic()
    r = subprocess.run([vessel, "vm", "migrate-send", "--api-sock", sock, "--to", url,
                        "--downtime-ms", str(downtime_ms), "--timeout-s", "120",
                        "--on-timeout", "force"], capture_output=True, text=True)
    t1 = time.monotonic()
    if r.returncode != 0:
        raise SystemExit(f"migrate.sh: vessel migrate-send: {r.stderr}")
    dst.wait_beats(20, 60)
    switch, gap, beat = guest_gaps(src, dst, t0 - 1, time.monotonic())
    m = re.search(r"(\d+) rounds, ([\d.]+) MiB sent, downtime ([\d.]+) ms, total ([\d.]+) ms",
                  r.stdout)
    src.kill()
    dst.kill()
    return {"total time (s)": t1 - t0, "VMM's downtime (ms)": float(m.group(3)),
            "guest's switch gap (ms)": switch * 1e3,
            "guest's longest gap (ms)": gap * 1e3, "heartbeat period (ms)": beat * 1e3,
            "MiB sent": float(m.group(2)), "rounds": int(m.group(1))}


def qemu_cmd(tag, dirty, extra=()):
    qmp = os.path.join(work, f"q{tag}.qmp")
    return qmp, [qemu, "-M", machine, "-accel", "kvm", "-cpu", "host", "-smp", "1",
                 "-m", str(mem), "-display", "none", "-nodefaults", "-no-user-config",
                 "-no-reboot", "-serial", "stdio", "-kernel", kernel, "-initrd", initrd,
                 "-append", cmdline(dirty), "-qmp", f"unix:{qmp},server=on,wait=off", *extra]


def qemu_run(dirty):
    qmp_path, cmd = qemu_cmd("src", dirty)
    src = Console(cmd)
    src.wait_beats(20, boot_timeout)
    time.sleep(3 if dirty else 1)
    q = Qmp(qmp_path, 10)
    inc = f"unix:{work}/qm.sock"
    dqmp, dcmd = qemu_cmd("dst", dirty, ["-incoming", inc])
    dst = Console(dcmd)
    dq = Qmp(dqmp, 60)
    # QEMU caps a migration's bandwidth (32 MiB/s in 7.2) unless told otherwise; vessel
    # has no cap: both go as fast as the socket takes
    q.cmd("migrate-set-parameters", **{"downtime-limit": downtime_ms,
                                       "max-bandwidth": 1 << 40})
    t0 = time.monotonic()
    q.cmd("migrate", uri=inc)
    while True:
        st = q.cmd("query-migrate")
        if st.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.005)
    t1 = time.monotonic()
    if st["status"] != "completed":
        raise SystemExit(f"migrate.sh: QEMU migrate: {st}")
    if dq.cmd("query-status")["status"] != "running":
        dq.cmd("cont")
    dst.wait_beats(20, 60)
    switch, gap, beat = guest_gaps(src, dst, t0 - 1, time.monotonic())
    src.kill()
    dst.kill()
    return {"total time (s)": t1 - t0, "VMM's downtime (ms)": float(st.get("downtime", 0)),
            "guest's switch gap (ms)": switch * 1e3,
            "guest's longest gap (ms)": gap * 1e3, "heartbeat period (ms)": beat * 1e3,
            "MiB sent": st["ram"]["transferred"] / 2**20,
            "rounds": st["ram"].get("dirty-sync-count", 0)}


host = ("emulated KVM host (TCG, tests/kvmhost)" if os.environ.get("VESSEL_KVMHOST") == "inside"
        else "this machine")
print(f"migrate: {os.path.basename(kernel)} + initrd, {mem} MiB, 1 vCPU, downtime limit "
      f"{downtime_ms} ms, unix socket; QEMU -M {machine}; host: {host}")
keys = ("total time (s)", "VMM's downtime (ms)", "guest's switch gap (ms)",
        "guest's longest gap (ms)", "heartbeat period (ms)", "MiB sent", "rounds")
for dirty in (False, True):
    v = vessel_run(dirty)
    try:
        qf = qemu_run(dirty)
    except SystemExit as e:
        print(f"QEMU failed: {e}")
        qf = {}
    print(f"\n{'idle guest' if not dirty else 'guest dirtying 50 MiB/s'}")
    print(f"{'figure':<26}{'vessel':>12}{'qemu':>12}{'ratio':>9}")
    for k in keys:
        a, b = v.get(k), qf.get(k)
        cell = lambda x: "-" if x is None else f"{x:.3f}"
        ratio = f"{a / b:.3f}x" if a is not None and b else "-"
        print(f"{k:<26}{cell(a):>12}{cell(b):>12}{ratio:>9}")
subprocess.run(["rm", "-rf", work])
PY
