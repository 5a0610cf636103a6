#!/usr/bin/python3
"""linux-boot.py - the measuring half of bench/linux-boot.sh (read that file first).

Boots the same Linux kernel + initramfs under vessel and QEMU `-M microvm`, alternating
them round by round, and prints for each the medians of: spawn -> the guest's first
console line, spawn -> the kernel's "Run /init as init process" line, spawn -> the line
init's command prints, spawn -> the VMM's exit; the VMM's peak RSS; and its overhead:
its whole RSS minus the RSS of the guest-RAM mapping, both from one read of
/proc/PID/smaps taken when the guest says it is about to power off.

Timestamps: time.monotonic() just before the fork, and when the chunk that completes a
line comes out of the console pipe (this process does nothing but wait on that pipe while
a VM runs). Exit: when wait4() returns.
"""
import argparse
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

MARK = b"linux-boot: init"        # what init's command prints: `echo linux-boot: init`
RUN_INIT = b"Run /init as init process"
GUEST_DONE = b"vessel-guest: exit status"  # images/init, just before `poweroff -f`
POWER_DOWN = b"reboot: Power down"          # the kernel's last line before the S5 write


def smaps(pid, guest_bytes):
    """One read of /proc/PID/smaps: (total Rss KiB, guest-RAM mapping Rss KiB, rest
    split as {'anon': KiB, 'file': KiB}, the biggest other mappings) or None."""
    try:
        with open(f"/proc/{pid}/smaps", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    maps, cur = [], None
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if m:
            cur = {"size": int(m.group(2), 16) - int(m.group(1), 16), "perm": m.group(3),
                   "name": m.group(4) or "[anon]", "Rss": 0, "Anonymous": 0}
            maps.append(cur)
            continue
        k, _, v = line.partition(":")
        if cur is not None and k in ("Rss", "Anonymous"):
            cur[k] = int(v.split()[0])
    if not maps:
        return None
    # guest RAM: the one anonymous mapping at least as big as the guest's memory (QEMU
    # may round its RAM block up for alignment); the biggest such one
    cands = [m for m in maps if m["size"] >= guest_bytes and m["name"] == "[anon]"]
    if not cands:
        return None
    g = max(cands, key=lambda m: m["size"])
    total = sum(m["Rss"] for m in maps)
    rest = [m for m in maps if m is not g]
    anon = sum(m["Anonymous"] for m in rest)
    top = sorted(rest, key=lambda m: -m["Rss"])[:8]
    return {"total": total, "guest": g["Rss"], "guest_size": g["size"], "anon": anon,
            "file": total - g["Rss"] - anon,
            "top": [(m["Rss"], m["perm"], m["name"]) for m in top]}


def boot(cmd, mem_mib, timeout, log):
    """One boot. Returns a dict of figures (ms, MiB) or raises SystemExit."""
    err = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    fd = p.stdout.fileno()
    got, buf, lines, snap = {}, b"", [], None
    try:
        while True:
            left = timeout - (time.monotonic() - t0)
            if left <= 0:
                raise TimeoutError
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            data = os.read(fd, 65536)
            now = time.monotonic() - t0
            if not data:
                break
            buf += data
            *done, buf = buf.split(b"\n")
            for line in done:
                line = line.rstrip(b"\r")
                lines.append((now, line))
                got.setdefault("first", now)
                if RUN_INIT in line:
                    got.setdefault("run_init", now)
                if line == MARK:
                    got.setdefault("mark", now)
                if line.startswith(GUEST_DONE) or line.startswith(POWER_DOWN) or \
                        POWER_DOWN in line:
                    s = smaps(p.pid, mem_mib << 20)
                    if s:
                        snap = s
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        got["exit"] = time.monotonic() - t0
    except TimeoutError:
        p.kill()
        p.wait()
        got["exit"] = None
        ru = None
    finally:
        if p.poll() is None:      # timeout, Ctrl-C, SIGTERM: leave no VMM behind
            p.kill()
            p.wait()
        p.stdout.close()
    err.seek(0)
    stderr = err.read().decode(errors="replace")
    err.close()
    print(f"$ {' '.join(cmd)}\n# exit status {p.returncode}", file=log)
    for t, line in lines:
        print(f"{t * 1e3:10.1f} {line.decode(errors='replace')}", file=log)
    if stderr:
        print("# stderr:\n" + stderr, file=log)
    if snap:
        print(f"# smaps: total {snap['total']} KiB, guest RAM {snap['guest']} KiB of "
              f"{snap['guest_size'] >> 10}, other anon {snap['anon']} KiB, other file-backed "
              f"{snap['file']} KiB; biggest other mappings:", file=log)
        for rss, perm, name in snap["top"]:
            print(f"#   {rss:8d} KiB {perm} {name}", file=log)
    log.flush()
    why = None
    if got["exit"] is None:
        why = f"timed out after {timeout:.0f} s"
    elif p.returncode != 0:
        why = f"exit status {p.returncode}"
    elif "mark" not in got or "run_init" not in got:
        why = "no 'Run /init' or no init marker line on the console"
    elif snap is None:
        why = "no smaps sample of the guest RAM mapping"
    if why:
        tail = "\n".join(line.decode(errors="replace") for _, line in lines[-15:])
        raise SystemExit(f"linux-boot: {cmd[0]}: {why}\n{tail}\n{stderr[-800:]}")
    ms = {k: v * 1e3 for k, v in got.items()}
    return {"first": ms["first"], "run_init": ms["run_init"], "mark": ms["mark"],
            "exit": ms["exit"], "peak": ru.ru_maxrss / 1024, "guest": snap["guest"] / 1024,
            "overhead": (snap["total"] - snap["guest"]) / 1024,
            "over_anon": snap["anon"] / 1024, "over_file": snap["file"] / 1024,
            "top": snap["top"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vessel", required=True)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--cmdline", required=True)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--mem", type=int, default=256, help="MiB")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--host", default="?")
    ap.add_argument("--verbose", action="store_true",
                    help="print every boot's console (host ms per line) and smaps summary")
    a = ap.parse_args()

    # init's command: its line marks init; ` -- WORDS` is how both VMMs hand it to init
    full = f"{a.cmdline} -- echo {MARK.decode()}"
    vmms = {
        "vessel": [a.vessel, "vm", "run", "--kernel", a.kernel, "--initrd", a.initrd,
                   "--cmdline", a.cmdline, "--cpus", str(a.cpus), "--memory", f"{a.mem}M",
                   "--", "echo", *MARK.decode().split()],
        "qemu": [a.qemu, "-M", "microvm", "-accel", "kvm", "-cpu", "host",
                 "-smp", str(a.cpus), "-m", str(a.mem), "-display", "none", "-nodefaults",
                 "-no-user-config", "-no-reboot", "-serial", "stdio",
                 "-kernel", a.kernel, "-initrd", a.initrd, "-append", full],
    }
    figs = {n: [] for n in vmms}
    load0 = os.getloadavg()[0]
    t_start = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        for i in range(a.warmup + a.rounds):
            order = list(vmms) if i % 2 == 0 else list(vmms)[::-1]
            for name in order:
                tag = "warm-up" if i < a.warmup else f"round {i - a.warmup + 1}/{a.rounds}"
                print(f"# {tag}: {name}", file=log)
                f = boot(vmms[name], a.mem, a.timeout, log)
                print(f"linux-boot: {tag} {name}: init {f['run_init']:.0f} ms, "
                      f"exit {f['exit']:.0f} ms, overhead {f['overhead']:.1f} MiB",
                      file=sys.stderr, flush=True)
                if i >= a.warmup:
                    figs[name].append(f)
        if a.verbose:
            log.seek(0)
            sys.stderr.write(log.read())
    took = time.monotonic() - t_start

    def med(name, k):
        return statistics.median(f[k] for f in figs[name])

    def cell(name, k, fmt):
        v = [f[k] for f in figs[name]]
        return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"

    print(f"linux-boot: {a.rounds} rounds (+{a.warmup} warm-up), vessel and QEMU microvm "
          f"alternating, {took:.0f} s in all")
    print(f"host: {a.host}; load average before/after {load0:.2f}/{os.getloadavg()[0]:.2f}")
    print(f"guest: {a.kernel} + {a.initrd}, {a.cpus} vCPU, {a.mem} MiB, "
          f"cmdline \"{full}\"")
    print(f"qemu: {subprocess.run([a.qemu, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}")
    print()
    print(f"| figure | vessel | QEMU microvm | vessel/QEMU |")
    print(f"|---|---|---|---|")
    rows = (("first", "spawn -> first console line (ms)", "{:.0f}"),
            ("run_init", "spawn -> `Run /init` (ms)", "{:.0f}"),
            ("mark", "spawn -> init's command line (ms)", "{:.0f}"),
            ("exit", "spawn -> VMM exit (ms)", "{:.0f}"),
            ("peak", "peak RSS (MiB)", "{:.1f}"),
            ("guest", "guest RAM touched (MiB)", "{:.1f}"),
            ("overhead", "overhead: RSS - guest RAM (MiB)", "{:.2f}"),
            ("over_anon", "  of which anonymous (MiB)", "{:.2f}"),
            ("over_file", "  of which file-backed (MiB)", "{:.2f}"))
    for k, label, fmt in rows:
        q = med("qemu", k)
        ratio = f"{med('vessel', k) / q:.3f}x" if q else "-"
        print(f"| {label} | {cell('vessel', k, fmt)} | {cell('qemu', k, fmt)} | {ratio} |")
    print()
    init, qinit, over = med("vessel", "run_init"), med("qemu", "run_init"), med("vessel", "overhead")
    for ok, what in ((init <= 0.7 * qinit, f"time to init {init / qinit:.3f}x QEMU microvm <= 0.7x"),
                     (over <= 5, f"VMM overhead {over:.2f} MiB <= 5 MiB")):
        print(f"target {'met' if ok else 'MISSED'}: {what}")
    print("what the overhead is made of, last boot (KiB, the biggest mappings but guest RAM):")
    for name in vmms:
        print(f"  {name}: " + ", ".join(f"{r} {n.rsplit('/', 1)[-1]}" for r, _, n in
                                        figs[name][-1]["top"][:5]))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main()
