"""Live migration (issue 11, docs/migration.md) of a real Linux guest between vessel
processes: the guest counts on its console and writes each tick to its disk (the counter
of test_vm_api / test_vm_snapshot); it moves over a Unix socket to a `vessel vm
migrate-receive`, and from there over TCP on loopback to another, and keeps counting
with no gap and no repeat, its disk holding every tick. Receivers that take another vCPU
count or memory size refuse before any memory moves, and the source keeps running; a
destination killed mid-transfer leaves the source running and answering its API. A
second guest dirties memory faster than the link: with a tiny --timeout-s, cancel keeps
the source running, force completes the move.

Boots VMs: marked kvm (hardware KVM, or inside tests/kvmhost/run).
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from test_vm_api import COUNTER, DISK_BLOCKS, Api, Console, spec  # noqa: F401 (fixture)
from test_vm_snapshot import disk_ticks, start_api

pytestmark = pytest.mark.kvm

BOOT_TIMEOUT = 400
TICK_TIMEOUT = 120
MIGRATE_TIMEOUT = 300

# dd's buffer is cleared by the kernel on every read from /dev/zero: 48 MiB of the guest's
# RAM rewritten as fast as the guest can, for ever, while the counter ticks
DIRTIER = ("dd if=/dev/zero of=/dev/null bs=48M count=1000000000 2>/dev/null & "
           + COUNTER)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    """`vessel vm migrate-receive`, with its API on a socket once the VM runs (an Api
    whose process is the receiver)."""

    def __init__(self, vessel, spec, url, console_path, extra=()):
        self.dir = tempfile.mkdtemp(prefix="vmig")
        self.sock = os.path.join(self.dir, "api.sock")
        self.url = url
        self.console = Console(console_path)
        with open(console_path, "w") as out:
            self.proc = subprocess.Popen(
                [vessel, "vm", "migrate-receive", "--listen", url, "--api-sock", self.sock,
                 *extra], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                text=True)
        self.api = Api.__new__(Api)
        self.api.dir, self.api.sock, self.api.spec, self.api.proc = (self.dir, self.sock,
                                                                      spec, self.proc)
        if url.startswith("unix:"):
            path = url[5:]
            deadline = time.monotonic() + 10
            while not os.path.exists(path):
                assert self.proc.poll() is None, self.proc.stderr.read()
                assert time.monotonic() < deadline, "receiver not listening after 10 s"
                time.sleep(0.02)
        else:
            host, port = url[4:].rsplit(":", 1)
            deadline = time.monotonic() + 10
            while True:
                assert self.proc.poll() is None, self.proc.stderr.read()
                assert time.monotonic() < deadline, "receiver not listening after 10 s"
                out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"],
                                     capture_output=True, text=True).stdout
                if out.strip():
                    break
                time.sleep(0.05)

    def wait_api(self, timeout=60):
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        return self.proc.returncode, self.proc.stderr.read()


def exited(proc, timeout):
    """(exit status, stderr) of a VMM that should end by itself within timeout; if it did
    not, ("still running ...", stderr) with where its threads were, and it is killed: a
    test then fails saying so instead of erroring out of its fixture."""
    try:
        return proc.wait(timeout=timeout), proc.stderr.read()
    except subprocess.TimeoutExpired:
        where = []
        for task in sorted(os.listdir(f"/proc/{proc.pid}/task")):
            try:
                with open(f"/proc/{proc.pid}/task/{task}/comm") as f:
                    comm = f.read().strip()
                with open(f"/proc/{proc.pid}/task/{task}/wchan") as f:
                    wchan = f.read().strip()
            except OSError:
                continue
            where.append(f"{comm}:{wchan}")
        proc.kill()
        proc.wait()
        return f"still running after {timeout} s ({' '.join(where)})", proc.stderr.read()


def migrate_send(vessel, src, url, *extra, timeout=MIGRATE_TIMEOUT):
    r = subprocess.run([vessel, "vm", "migrate-send", "--api-sock", src.sock, "--to", url,
                        *extra], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def migrate_status(a):
    status, body = a.call("GET", "/migrate")
    assert status == 200, body
    return body


def all_ticks(*consoles):
    """Every tick the guest printed, through every VMM it ran in, in order: the consoles'
    texts joined (a line the move split between two is whole again)."""
    text = "".join(c.text() for c in consoles)
    return [int(t) for t in re.findall(r"T:TICK (\d+)", text)]


def consecutive(ticks):
    return ticks == list(range(ticks[0], ticks[0] + len(ticks))) if ticks else False


def boot(vessel, spec, d, tag, cmd, mem_mib=128, disk=None, machine=None):
    con = Console(d / f"{tag}.txt")
    a = start_api(vessel, spec, con.path, tag)
    from test_linux import images_dir
    images = images_dir()
    a.ok("PUT", "/boot-source", {
        "kernel_image_path": str(images / "vmlinuz"),
        "initrd_path": str(images / "initrd.img"),
        "boot_args": f'console=ttyS0 panic=-1 quiet -- sh -c "{cmd}"'})
    a.ok("PUT", "/machine-config",
         {"vcpu_count": 1, "mem_size_mib": mem_mib, **(machine or {})})
    a.ok("PUT", "/entropy", {})
    if disk:
        a.ok("PUT", "/drives/disk", {"drive_id": "disk", "path_on_host": str(disk),
                                     "is_root_device": False}, "/drives/{drive_id}")
    a.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    return a, con


def fake_destination(path, read_bytes):
    """A destination that takes HELLO, answers ACK, reads read_bytes of the stream, says
    so on stdout and waits to be killed: the test kills it mid-transfer."""
    code = f"""
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.bind({str(path)!r}); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
def full(n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x: sys.exit(3)
        b += x
    return b
magic, typ, flags, ln = struct.unpack("<IHHQ", full(16))
assert magic == 0x47494d56 and typ == 1, (magic, typ)
full(ln)
c.sendall(struct.pack("<IHHQ", 0x47494d56, 2, 0, 0))
got = 0
while got < {read_bytes}:
    got += len(full(min(65536, {read_bytes} - got)))
print("got", got, flush=True)
import time
time.sleep(600)
"""
    p = subprocess.Popen(["/usr/bin/python3", "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "listening"
    return p


def counter_scenario(vessel, spec, d):
    s = {}
    disk = d / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(DISK_BLOCKS * 512)
    procs = []
    try:
        src, con_src = boot(vessel, spec, d, "src", COUNTER, disk=disk)
        procs.append(src)
        s["booted"] = con_src.wait_ticks(5, BOOT_TIMEOUT, after=0)
        if not s["booted"]:
            s["console"] = con_src.text()[-3000:]
            return s

        # ---- refusals: another vCPU count, another memory size; the source runs on
        for name, extra in [("cpus", ["--cpus", "2"]), ("memory", ["--memory", "256M"])]:
            rx = Receiver(vessel, spec, f"unix:{d}/refuse-{name}.sock",
                          d / f"refuse-{name}.txt", extra)
            s[f"refuse_{name}_send"] = migrate_send(vessel, src, rx.url)
            s[f"refuse_{name}_rx"] = exited(rx.proc, 60)
            s[f"refuse_{name}_status"] = migrate_status(src)
            s[f"refuse_{name}_state"] = src.ok("GET", "/")["state"]
            s[f"refuse_{name}_ticks"] = con_src.wait_ticks(3, TICK_TIMEOUT)

        # ---- a destination killed mid-transfer (after 4 MiB): the source runs on
        fake = fake_destination(d / "fake.sock", 4 << 20)
        procs.append(fake)
        status, body = src.call("PUT", "/migrate", {"destination_url": f"unix:{d}/fake.sock"})
        s["kill_put"] = (status, body)
        s["kill_got"] = fake.stdout.readline().strip()
        s["kill_active"] = migrate_status(src)["state"]
        fake.kill()
        fake.wait()
        deadline = time.monotonic() + 60
        while migrate_status(src)["state"] == "active" and time.monotonic() < deadline:
            time.sleep(0.1)
        s["kill_status"] = migrate_status(src)
        s["kill_state"] = src.ok("GET", "/")["state"]
        s["kill_ticks"] = con_src.wait_ticks(3, TICK_TIMEOUT)
        src.ok("PATCH", "/vm", {"state": "Paused"})
        src.ok("PATCH", "/vm", {"state": "Resumed"})
        s["kill_pause_resume_ticks"] = con_src.wait_ticks(2, TICK_TIMEOUT)

        # ---- over a Unix socket to d1
        d1 = Receiver(vessel, spec, f"unix:{d}/d1.sock", d / "d1.txt")
        procs.append(d1)
        s["unix_send"] = migrate_send(vessel, src, d1.url)
        s["src_exit"] = exited(src.proc, 30)
        s["d1_api"] = d1.wait_api()
        s["d1_ticked"] = d1.console.wait_ticks(5, TICK_TIMEOUT, after=0)
        s["d1_state"] = d1.api.ok("GET", "/")["state"] if s["d1_api"] else None

        # ---- from d1 over TCP on loopback to d2
        url = f"tcp:127.0.0.1:{free_port()}"
        d2 = Receiver(vessel, spec, url, d / "d2.txt")
        procs.append(d2)
        s["tcp_send"] = migrate_send(vessel, d1.api, url)
        s["d1_exit"] = exited(d1.proc, 30)
        s["d2_ticked"] = d2.console.wait_ticks(5, TICK_TIMEOUT, after=0)
        s["d2_api"] = d2.wait_api()
        d2.api.ok("PATCH", "/vm", {"state": "Paused"})
        time.sleep(0.5)
        s["ticks"] = all_ticks(con_src, d1.console, d2.console)
        s["per_vmm"] = [len(c.ticks()) for c in (con_src, d1.console, d2.console)]
        s["disk"] = disk_ticks(disk)
    finally:
        for p in procs:
            if isinstance(p, subprocess.Popen):
                if p.poll() is None:
                    p.kill()
                    p.wait()
            else:
                p.stop(signal.SIGKILL)
    return s


@pytest.fixture(scope="module")
def counter(vessel, spec, tmp_path_factory):
    return counter_scenario(vessel, spec, tmp_path_factory.mktemp("mig"))


def test_guest_boots(counter):
    assert counter["booted"], counter.get("console")


@pytest.mark.parametrize("what,says", [("cpus", "vCPUs"), ("memory", "MiB of RAM")])
def test_receiver_with_other_shape_refuses_before_memory_moves(counter, what, says):
    rc, out, err = counter[f"refuse_{what}_send"]
    assert rc != 0 and "refused" in err and says in err, err
    rx_rc, rx_err = counter[f"refuse_{what}_rx"]
    assert rx_rc != 0 and says in rx_err, rx_err
    st = counter[f"refuse_{what}_status"]
    assert st["state"] == "failed" and st["pages_sent"] == 0, st
    assert counter[f"refuse_{what}_state"] == "Running"
    assert counter[f"refuse_{what}_ticks"], "the source stopped counting"


def test_killed_destination_leaves_the_source_running(counter):
    assert counter["kill_put"][0] == 204, counter["kill_put"]
    assert counter["kill_got"] == f"got {4 << 20}"
    assert counter["kill_active"] == "active"
    st = counter["kill_status"]
    assert st["state"] == "failed" and st["error"], st
    assert counter["kill_state"] == "Running"
    assert counter["kill_ticks"] and counter["kill_pause_resume_ticks"]


def test_unix_migration_moves_the_running_guest(counter):
    rc, out, err = counter["unix_send"]
    assert rc == 0 and "migrated to unix:" in out, (out, err)
    src_rc, src_err = counter["src_exit"]
    assert src_rc == 0 and "migrated to unix:" in src_err, counter["src_exit"]
    assert counter["d1_api"] and counter["d1_state"] == "Running"
    assert counter["d1_ticked"]


def test_tcp_migration_moves_it_again(counter):
    rc, out, err = counter["tcp_send"]
    assert rc == 0 and "migrated to tcp:127.0.0.1:" in out, (out, err)
    assert counter["d1_exit"][0] == 0, counter["d1_exit"]
    assert counter["d2_ticked"] and counter["d2_api"]


def test_the_count_has_no_gap_and_no_repeat(counter):
    ticks = counter["ticks"]
    assert ticks[0] == 0 and consecutive(ticks), ticks
    assert all(n >= 5 for n in counter["per_vmm"]), counter["per_vmm"]


def test_the_disk_holds_every_tick(counter):
    disk = counter["disk"]
    assert disk and consecutive(disk) and disk[0] == 0, disk
    # every tick printed was written (the write follows the print)
    assert disk[-1] >= counter["ticks"][-1] - 1, (disk[-1], counter["ticks"][-1])


def dirty_scenario(vessel, spec, d):
    s = {}
    procs = []
    try:
        src, con = boot(vessel, spec, d, "dsrc", DIRTIER, mem_mib=256)
        procs.append(src)
        s["booted"] = con.wait_ticks(5, BOOT_TIMEOUT, after=0)
        if not s["booted"]:
            s["console"] = con.text()[-3000:]
            return s
        rx = Receiver(vessel, spec, f"unix:{d}/c.sock", d / "c.txt")
        procs.append(rx)
        t0 = time.monotonic()
        s["cancel_send"] = migrate_send(vessel, src, rx.url, "--downtime-ms", "1",
                                        "--timeout-s", "2", "--on-timeout", "cancel")
        s["cancel_s"] = time.monotonic() - t0
        if s["cancel_send"][0] == 0:
            # the guest did not outrun the link: under TCG a write fault under dirty
            # logging is slow, so a short round can find too few pages dirty and the
            # migration converge as it should; the scenario needs another try
            s["converged"] = True
            return s
        s["cancel_status"] = migrate_status(src)
        s["cancel_rx"] = exited(rx.proc, 60)
        s["cancel_state"] = src.ok("GET", "/")["state"]
        s["cancel_ticks"] = con.wait_ticks(3, TICK_TIMEOUT)

        rx2 = Receiver(vessel, spec, f"unix:{d}/f.sock", d / "f.txt")
        procs.append(rx2)
        s["force_send"] = migrate_send(vessel, src, rx2.url, "--downtime-ms", "1",
                                       "--timeout-s", "2", "--on-timeout", "force")
        s["force_src_exit"] = exited(src.proc, 30)
        s["force_ticked"] = rx2.console.wait_ticks(5, TICK_TIMEOUT, after=0)
        if not s["force_ticked"]:
            s["force_console"] = rx2.console.text()[-2000:]
            s["force_src_console"] = con.text()[-1000:]
            if rx2.proc.poll() is not None:
                s["force_rx_exit"] = (rx2.proc.returncode, rx2.proc.stderr.read()[-2000:])
        s["ticks"] = all_ticks(con, rx2.console)
    finally:
        for p in procs:
            p.stop(signal.SIGKILL)
    return s


@pytest.fixture(scope="module")
def dirty(vessel, spec, tmp_path_factory):
    """The timeout's behaviour needs a guest that dirties memory faster than the link
    sends it, which the emulated host does not always give: a converged try is run again
    (at most 3), never counted as a timeout."""
    for _ in range(3):
        s = dirty_scenario(vessel, spec, tmp_path_factory.mktemp("migd"))
        if not s.get("converged"):
            return s
    pytest.fail("3 tries of a guest dirtying 48 MiB at a time all converged under "
                "--downtime-ms 1: the guest never outran the link here")


def test_timeout_cancel_keeps_the_source_running(dirty):
    assert dirty["booted"], dirty.get("console")
    rc, out, err = dirty["cancel_send"]
    assert rc != 0 and "timed out" in err and "cancelled" in err, err
    st = dirty["cancel_status"]
    assert st["state"] == "failed" and st["bytes_sent"] > 0, st
    rx_rc, rx_err = dirty["cancel_rx"]
    assert rx_rc != 0 and "the source gave up" in rx_err, rx_err
    assert dirty["cancel_state"] == "Running" and dirty["cancel_ticks"]


def rx2_err(dirty):
    """What the forced migration's destination said, if it has gone."""
    return dirty.get("force_rx_exit")


@pytest.mark.xfail(os.environ.get("VESSEL_KVMHOST") == "inside", strict=False, reason=(
    "the emulated KVM host's fault, not vessel's (docs/testing.md, Dirty logging): while a "
    "guest dirties memory fast, KVM's dirty log toggled on and off now and then leaves "
    "the guest's kernel text not present in the nested page tables and the guest "
    "triple-faults. QEMU 7.2 with -accel kvm in the same host, migrating and cancelling "
    "the same guest, lost it in 6 of 9 runs (0 of 4 without migrating); vessel's KVM "
    "calls alone, with no stream, 0 of 6. On hardware KVM this test must pass"))
def test_timeout_force_completes(dirty):
    rc, out, err = dirty["force_send"]
    # the source's own exit says why it went away, if it did
    assert rc == 0 and "migrated to" in out, (out, err, dirty["force_src_exit"])
    assert dirty["force_src_exit"][0] == 0, dirty["force_src_exit"]
    assert dirty["force_ticked"], (dirty.get("force_console"), dirty.get("force_src_console"),
                                   rx2_err(dirty))
    ticks = dirty["ticks"]
    assert ticks[0] == 0 and consecutive(ticks), ticks
