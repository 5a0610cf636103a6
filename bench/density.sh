#!/usr/bin/env bash
# density.sh - how many microVMs of 128 MiB, each running a shell, fit in a memory budget:
# plain, against balloon (free page reporting) + KSM (--merge). Guests are started one
# after the other inside a cgroup v2 with memory.max = the budget and no swap; each touches
# WORK MiB of the same data (the shape of N copies of one service) and frees half of it,
# then waits; once it says so and SETTLE seconds have passed (ksmd scans, the guest
# reports its free pages), the next one starts. The count is the guests still alive when
# one more fails to come up or is killed by the cgroup's OOM killer (or MAX are up).
#
# Usage: bench/density.sh [VESSEL]     Env: BUDGET=512 (MiB) GUEST=128 WORK=48 MAX=16
#                                           SETTLE=20 BOOT_TIMEOUT=300
# The issue asks for 4 GiB: on a machine without hardware KVM the bench runs inside the
# emulated KVM host (tests/kvmhost/run), where boots are slow, so the default budget is
# scaled down to 512 MiB; BUDGET=4096 MAX=64 is the full-size run. Needs root (cgroup, KSM).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VESSEL=$(realpath "${1:-${VESSEL:-$ROOT/build/vessel}}")
BUDGET=${BUDGET:-512}
GUEST=${GUEST:-128}
WORK=${WORK:-48}
MAX=${MAX:-16}
SETTLE=${SETTLE:-20}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
KERNEL=${KERNEL:-$ROOT/images/out/vmlinuz}
INITRD=${INITRD:-$ROOT/images/out/initrd.img}

. "$ROOT/bench/lib.sh"
for f in "$VESSEL" "$KERNEL" "$INITRD"; do [ -e "$f" ] || die "$f missing (make; make images)"; done

[ -n "${VESSEL_KVMHOST:-}" ] || hardware_kvm ||
	echo "density.sh: budget ${BUDGET} MiB, scaled down from the issue's 4 GiB" >&2
bench_kvm_host $((600 + 2 * MAX * (BOOT_TIMEOUT / 4 + SETTLE))) BUDGET GUEST WORK MAX SETTLE \
	BOOT_TIMEOUT KERNEL INITRD -- "$VESSEL"
CG=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[ -n "$CG" ] || die "no cgroup v2 mounted (the budget is a cgroup's memory.max)"
[ -d /sys/kernel/mm/ksm ] || die "this kernel has no KSM"

exec /usr/bin/python3 - "$VESSEL" "$KERNEL" "$INITRD" "$CG" "$BUDGET" "$GUEST" "$WORK" "$MAX" \
	"$SETTLE" "$BOOT_TIMEOUT" <<'PY'
import os, pathlib, signal, subprocess, sys, tempfile, time

vessel, kernel, initrd, cg = sys.argv[1:5]
budget, guest, work, maxn, settle, boot_timeout = map(int, sys.argv[5:11])
KSM = pathlib.Path("/sys/kernel/mm/ksm")
tmp = pathlib.Path(tempfile.mkdtemp(prefix="vdensity", dir=os.environ.get("TMPDIR", "/tmp")))
# the same data in every guest; half of it freed again (what the balloon's reporting returns)
SCRIPT = (f"mkdir /t; mount -t tmpfs tmpfs /t; dd if=/dev/zero bs=1M count={work} 2>/dev/null"
          f" | tr '\\0' v > /t/a; dd if=/t/a of=/t/b bs=1M count={work // 2} 2>/dev/null;"
          f" rm /t/b; echo T:READY; while true; do sleep 1000; done")


def run(mode):
    group = pathlib.Path(cg) / f"vessel-density-{os.getpid()}-{mode}"
    group.mkdir()
    (group / "memory.max").write_text(f"{budget << 20}\n")
    if (group / "memory.swap.max").exists():
        (group / "memory.swap.max").write_text("0\n")
    procs = []
    try:
        while len(procs) < maxn:
            i = len(procs)
            out = tmp / f"{mode}-{i}.txt"
            args = [vessel, "vm", "run", "--memory", f"{guest}M", "--kernel", kernel,
                    "--initrd", initrd, "--cmdline", "console=ttyS0 panic=-1 quiet"]
            if mode == "balloon+ksm":
                args += ["--merge", "--balloon", "amount=0,free_page_reporting"]
            f = open(out, "w")
            p = subprocess.Popen(["sh", "-c", f"echo $$ > {group}/cgroup.procs && exec \"$@\"",
                                  "sh", *args, "--", "sh", "-c", SCRIPT],
                                 stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
            procs.append((p, out))
            deadline = time.monotonic() + boot_timeout
            while time.monotonic() < deadline and p.poll() is None and \
                    "T:READY" not in out.read_text(errors="replace"):
                time.sleep(1)
            if p.poll() is not None or "T:READY" not in out.read_text(errors="replace"):
                print(f"  {mode}: guest {i + 1} did not come up", file=sys.stderr, flush=True)
                break
            print(f"  {mode}: guest {i + 1} up, cgroup at "
                  f"{int((group / 'memory.current').read_text()) >> 20} MiB", file=sys.stderr,
                  flush=True)
            time.sleep(settle)
            if any(q.poll() is not None for q, _ in procs):
                break
        alive = sum(1 for q, o in procs
                    if q.poll() is None and "T:READY" in o.read_text(errors="replace"))
        used = int((group / "memory.current").read_text()) >> 20
        sharing = int((KSM / "pages_sharing").read_text())
        return alive, used, sharing
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        time.sleep(1)
        group.rmdir()


old = {n: (KSM / n).read_text().strip() for n in ("run", "pages_to_scan", "sleep_millisecs")}
# the budget needs the memory controller in the groups under the root
ctl = pathlib.Path(cg) / "cgroup.subtree_control"
enabled_memory = "memory" not in ctl.read_text().split()
if enabled_memory:
    ctl.write_text("+memory\n")
try:
    (KSM / "pages_to_scan").write_text("20000")
    (KSM / "sleep_millisecs").write_text("10")
    (KSM / "run").write_text("1")
    res = {m: run(m) for m in ("plain", "balloon+ksm")}
finally:
    for n, v in old.items():
        (KSM / n).write_text(v)
    if enabled_memory:
        try:
            ctl.write_text("-memory\n")
        except OSError:
            pass  # another group uses it now: leave it on
print(f"density: {guest} MiB guests (busybox shell, {work} MiB of identical data, half freed) "
      f"in a {budget} MiB budget, kernel {os.uname().release}"
      f"{' (emulated KVM host: TCG)' if os.environ.get('VESSEL_KVMHOST') == 'inside' else ''}")
for m, (n, used, sharing) in res.items():
    print(f"  {m:12} {n:3} guests  (cgroup memory.current {used} MiB at the end, "
          f"KSM pages_sharing {sharing})")
p, b = res["plain"][0], res["balloon+ksm"][0]
print(f"  ratio balloon+ksm / plain: {b / p:.2f}" if p else "  plain: no guest fit")
PY
