#!/usr/bin/env python3
"""Measures for bench/vsock.sh: one boot per VMM and run, alternating; see vsock.sh."""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1 << 20
CID = 3


class Vm:
    def __init__(self, cmd, timeout):
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines, self.cond, self.timeout = [], threading.Condition(), timeout
        self.t0 = time.monotonic()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\r\n"))
                self.cond.notify_all()

    def wait_line(self, prefix, timeout=None):
        end = time.monotonic() + (timeout or self.timeout)
        with self.cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                left = end - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    self.stop()  # its stderr ends only with it
                    raise SystemExit(f"vsock.py: no `{prefix}` line after {time.monotonic() - self.t0:.0f} s; "
                                     "console:\n" + "\n".join(self.lines[-30:]) +
                                     "\nstderr:\n" + self.p.stderr.read()[-2000:])
                self.cond.wait(min(left, 1))

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def initrd_with_tool(tool, initrd, tmp):
    root = os.path.join(tmp, "extra")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy(tool, os.path.join(root, "bin", "vsock_tool"))
    cpio = subprocess.run("find . | cpio -o -H newc -R 0:0 --quiet | gzip -1", shell=True,
                          cwd=root, capture_output=True, check=True).stdout
    out = os.path.join(tmp, "initrd.img")
    with open(out, "wb") as f, open(initrd, "rb") as base:
        f.write(base.read() + cpio)
    return out


def connector(vmm, uds):
    def connect(port):
        if vmm == "vessel":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(uds)
            s.sendall(f"CONNECT {port}\n".encode())
            line = b""
            while not line.endswith(b"\n"):
                b = s.recv(1)
                if not b:
                    raise SystemExit(f"vsock.py: vessel closed CONNECT {port}")
                line += b
            assert line.startswith(b"OK "), line
        else:
            s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            s.connect((CID, port))
        s.settimeout(120)
        return s
    return connect


def once(a, vmm, initrd, tmp):
    size = a.size * MiB
    script = (f"vsock_tool listen 5001 1 sink & vsock_tool listen 5002 1 echo & "
              f"vsock_tool listen 5003 1 source:{size} & wait")
    cmdline = "console=ttyS0 panic=-1 quiet"
    uds = os.path.join(tmp, f"v{time.monotonic_ns()}.sock")
    if vmm == "vessel":
        cmd = [a.vessel, "vm", "run", "--kernel", a.kernel, "--initrd", initrd,
               "--cmdline", cmdline, "--memory", "256M", "--vsock", f"cid={CID},uds={uds}",
               "--", "sh", "-c", script]
    else:
        cmd = ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "256",
               "-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
               "-serial", "stdio", "-device", f"vhost-vsock-device,guest-cid={CID}",
               "-kernel", a.kernel, "-initrd", initrd,
               "-append", f'{cmdline} -- sh -c "{script}"']
    vm = Vm(cmd, a.timeout)
    try:
        for port in (5001, 5002, 5003):
            vm.wait_line(f"T:VSOCK_LISTENING {port}")
        t_boot = time.monotonic() - vm.t0
        connect = connector(vmm, uds)
        # host -> guest
        chunk = os.urandom(MiB)
        t0 = time.monotonic()
        s = connect(5001)
        for _ in range(a.size):
            s.sendall(chunk)
        s.close()
        vm.wait_line("T:VSOCK port=5001 ", 120)
        h2g = size / (time.monotonic() - t0) / 1e6
        # guest -> host
        t0 = time.monotonic()
        s = connect(5003)
        got = 0
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            got += len(b)
        g2h = got / (time.monotonic() - t0) / 1e6
        s.close()
        if got != size:
            raise SystemExit(f"vsock.py: {vmm}: got {got} of {size} bytes from the guest")
        # round trips
        s = connect(5002)
        rtts = []
        for _ in range(a.pings):
            t0 = time.perf_counter()
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise SystemExit(f"vsock.py: {vmm}: echo broke")
            rtts.append(time.perf_counter() - t0)
        s.close()
        res = h2g, g2h, statistics.median(rtts) * 1e6
        print(f"vsock.py: {vmm}: booted in {t_boot:.0f} s; host->guest {h2g:.1f} MB/s, "
              f"guest->host {g2h:.1f} MB/s, round trip {res[2]:.0f} us", file=sys.stderr,
              flush=True)
        return res
    finally:
        vm.stop()


def main():
    ap = argparse.ArgumentParser()
    for k in ("vessel", "kernel", "initrd", "tool", "host"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--pings", type=int, default=500)
    ap.add_argument("--timeout", type=int, default=300)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vsb")
    try:
        initrd = initrd_with_tool(a.tool, a.initrd, tmp)
        res = {v: [] for v in ("vessel", "qemu")}
        load0 = os.getloadavg()[0]
        for i in range(a.runs):
            for vmm in (("vessel", "qemu") if i % 2 == 0 else ("qemu", "vessel")):
                res[vmm].append(once(a, vmm, initrd, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"vsock: {a.runs} runs each, alternating; {a.size} MiB each way, {a.pings} round "
          f"trips; vessel --vsock vs QEMU microvm vhost-vsock-device")
    print(f"host: {a.host}")
    print("load average before/after: %.2f / %.2f" % (load0, os.getloadavg()[0]))
    print(f"{'figure':<28}{'vessel':>24}{'qemu vhost-vsock':>24}{'vessel/QEMU':>13}")
    for i, (label, better_high) in enumerate((("host->guest MB/s", True),
                                              ("guest->host MB/s", True),
                                              ("round trip us (median)", False))):
        cells, med = [], {}
        for vmm in ("vessel", "qemu"):
            v = [r[i] for r in res[vmm]]
            med[vmm] = statistics.median(v)
            cells.append(f"{med[vmm]:.1f} ({min(v):.1f}-{max(v):.1f})")
        ratio = med["vessel"] / med["qemu"]
        print(f"{label:<28}{cells[0]:>24}{cells[1]:>24}{ratio:>12.3f}x")


if __name__ == "__main__":
    main()
