#!/usr/bin/env bash
# snapshot.sh - snapshots of the default Linux guest, vessel against QEMU, in one run: cold
# boot to a shell that answers on the console; snapshot create (vessel: Full and Diff
# through the API; QEMU: `migrate "exec:cat > FILE"`); load to a shell that answers
# (vessel: PUT /snapshot/load with resume_vm in a new process; QEMU: `-incoming "exec:cat
# FILE"` then `cont`). Prints each figure and the vessel/QEMU ratios.
#
# Usage: bench/snapshot.sh [VESSEL]     Env: MEM=256 QEMU_MACHINE=microvm BOOT_TIMEOUT=300
# Where this machine has no hardware-assisted /dev/kvm it re-runs itself inside the
# emulated KVM host (tests/kvmhost/run), as tests/kvm.sh does: figures there are TCG's.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VESSEL=$(realpath "${1:-${VESSEL:-$ROOT/build/vessel}}")
MEM=${MEM:-256}
QEMU_MACHINE=${QEMU_MACHINE:-microvm}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
KERNEL=${KERNEL:-$ROOT/images/out/vmlinuz}
INITRD=${INITRD:-$ROOT/images/out/initrd.img}

. "$ROOT/bench/lib.sh"
for f in "$VESSEL" "$KERNEL" "$INITRD"; do [ -e "$f" ] || die "$f missing (make; make images)"; done
command -v curl >/dev/null || die "curl missing"

bench_kvm_host $((300 + 6 * BOOT_TIMEOUT)) MEM QEMU_MACHINE BOOT_TIMEOUT KERNEL INITRD -- "$VESSEL"
QEMU=${QEMU:-$(command -v qemu-system-x86_64 || true)}
[ -n "$QEMU" ] || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

exec /usr/bin/python3 - "$VESSEL" "$QEMU" "$KERNEL" "$INITRD" "$MEM" "$QEMU_MACHINE" "$BOOT_TIMEOUT" <<'PY'
import os, select, subprocess, sys, tempfile, time
from benchlib import Qmp, curl

vessel, qemu, kernel, initrd, mem, machine, boot_timeout = sys.argv[1:8]
mem, boot_timeout = int(mem), float(boot_timeout)
# init is a shell reading the console: "ready" is the guest answering a line typed there
CMDLINE = "console=ttyS0 panic=-1 quiet -- sh"
work = tempfile.mkdtemp(prefix="vsnap", dir=os.environ.get("TMPDIR", "/tmp"))


class Guest:
    """A VMM process whose stdin/stdout are the guest's console."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.out = b""
        self.n = 0

    def ready(self, timeout):
        """Types `echo R<n>` every 0.2 s until the guest prints R<n>-ok; the seconds taken."""
        self.n += 1
        t0 = time.monotonic()
        want = f"R{self.n}-ok".encode()
        line = f"echo R{self.n}-ok\n".encode()
        next_type = 0.0
        while time.monotonic() - t0 < timeout:
            if time.monotonic() >= next_type:
                try:
                    self.p.stdin.write(line)
                    self.p.stdin.flush()
                except BrokenPipeError:
                    break
                next_type = time.monotonic() + 0.2
            r, _, _ = select.select([self.p.stdout], [], [], 0.05)
            if r:
                data = os.read(self.p.stdout.fileno(), 65536)
                if not data:
                    break
                self.out += data
                # the tty echoes the typed "echo R1-ok": the answer is a line of R1-ok alone
                if any(l.strip() == want for l in self.out.split(b"\n")):
                    return time.monotonic() - t0
        raise SystemExit(f"snapshot.sh: no answer on the console after {timeout} s: "
                         f"{self.out[-400:]!r}")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def vessel_api(tag):
    sock = os.path.join(work, f"{tag}.sock")
    t0 = time.monotonic()
    g = Guest([vessel, "vm", "api", "--api-sock", sock])
    while not os.path.exists(sock):
        if g.p.poll() is not None:
            raise SystemExit("snapshot.sh: vessel vm api exited")
        time.sleep(0.001)
    return g, sock, t0


def vessel_runs():
    f = {}
    g, sock, t0 = vessel_api("boot")
    curl(sock, "PUT", "/boot-source", {"kernel_image_path": kernel, "initrd_path": initrd,
                                      "boot_args": CMDLINE})
    curl(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mem,
                                          "track_dirty_pages": True})
    curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    g.ready(boot_timeout)
    f["cold boot to ready"] = time.monotonic() - t0
    full = dict(snapshot_path=f"{work}/v.state", mem_file_path=f"{work}/v.mem")
    diff = dict(snapshot_path=f"{work}/v.diff.state", mem_file_path=f"{work}/v.diff.mem")
    f["snapshot create Full"] = timed(lambda: (
        curl(sock, "PATCH", "/vm", {"state": "Paused"}),
        curl(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full", **full})))
    curl(sock, "PATCH", "/vm", {"state": "Resumed"})
    g.ready(60)
    f["snapshot create Diff"] = timed(lambda: (
        curl(sock, "PATCH", "/vm", {"state": "Paused"}),
        curl(sock, "PUT", "/snapshot/create", {"snapshot_type": "Diff", **diff})))
    g.kill()
    f["memory file data (MiB)"] = os.stat(full["mem_file_path"]).st_blocks * 512 / 2**20
    f["diff file data (MiB)"] = os.stat(diff["mem_file_path"]).st_blocks * 512 / 2**20
    g, sock, t0 = vessel_api("load")
    curl(sock, "PUT", "/snapshot/load", {
        "snapshot_path": full["snapshot_path"], "resume_vm": True,
        "mem_backend": {"backend_path": full["mem_file_path"], "backend_type": "File"}})
    f["load call"] = time.monotonic() - t0
    g.ready(60)
    f["load to ready"] = time.monotonic() - t0
    g.kill()
    return f


def qemu_cmd(tag, extra=()):
    qmp = os.path.join(work, f"q{tag}.qmp")
    return qmp, [qemu, "-M", machine, "-accel", "kvm", "-cpu", "host", "-smp", "1",
                 "-m", str(mem), "-display", "none", "-nodefaults", "-no-user-config",
                 "-no-reboot", "-serial", "stdio", "-kernel", kernel, "-initrd", initrd,
                 "-append", CMDLINE, "-qmp", f"unix:{qmp},server=on,wait=off", *extra]


def qemu_runs():
    f = {}
    qmp_path, cmd = qemu_cmd("boot")
    t0 = time.monotonic()
    g = Guest(cmd)
    g.ready(boot_timeout)
    f["cold boot to ready"] = time.monotonic() - t0
    q = Qmp(qmp_path, 10)
    state = os.path.join(work, "qemu.state")

    def save():
        q.cmd("stop")
        q.cmd("migrate", uri=f"exec:cat > {state}")
        while q.cmd("query-migrate").get("status") not in ("completed", "failed"):
            time.sleep(0.005)
        st = q.cmd("query-migrate")["status"]
        if st != "completed":
            raise SystemExit(f"snapshot.sh: QEMU migrate: {st}")
    f["snapshot create Full"] = timed(save)
    g.kill()
    f["memory file data (MiB)"] = os.stat(state).st_blocks * 512 / 2**20
    qmp_path, cmd = qemu_cmd("load", ["-incoming", f"exec:cat {state}"])
    t0 = time.monotonic()
    g = Guest(cmd)
    q = Qmp(qmp_path, 60)
    while q.cmd("query-status")["status"] == "inmigrate":
        time.sleep(0.005)
    q.cmd("cont")
    f["load call"] = time.monotonic() - t0
    g.ready(60)
    f["load to ready"] = time.monotonic() - t0
    g.kill()
    return f


host = "emulated KVM host (TCG, tests/kvmhost)" if os.environ.get("VESSEL_KVMHOST") == "inside" else "this machine"
print(f"snapshot: {os.path.basename(kernel)} + initrd, {mem} MiB, 1 vCPU; QEMU -M {machine}; host: {host}")
print(f"kvm: {next((m for m in ('kvm_intel', 'kvm_amd', 'kvm_pvm') if os.path.isdir('/sys/module/' + m)), '?')}")
v = vessel_runs()
try:
    qf = qemu_runs()
except SystemExit as e:
    print(f"QEMU failed: {e}")
    qf = {}
print(f"{'figure':<26}{'vessel':>12}{'qemu':>12}{'ratio':>9}")
for k in ("cold boot to ready", "snapshot create Full", "snapshot create Diff", "load call",
          "load to ready", "memory file data (MiB)", "diff file data (MiB)"):
    a, b = v.get(k), qf.get(k)
    unit = "" if "MiB" in k else " s"
    cell = lambda x: "-" if x is None else f"{x:.3f}{unit}"
    ratio = f"{a / b:.3f}x" if a is not None and b else "-"
    print(f"{k:<26}{cell(a):>12}{cell(b):>12}{ratio:>9}")
own = v["load to ready"] / v["cold boot to ready"]
print(f"vessel load-to-ready / its own cold boot: {own:.3f}x (target <= 0.1x)")
if qf.get("load to ready"):
    print(f"vessel load-to-ready / QEMU's: {v['load to ready'] / qf['load to ready']:.3f}x (target <= 0.2x)")
subprocess.run(["rm", "-rf", work])
PY
