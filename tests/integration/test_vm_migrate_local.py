"""Local live migration (issue 11, docs/migration.md, `migrate-send --local`): a VMM
upgrade in place. A real Linux guest with shared memory (machine-config mem_shared: its
RAM is a memfd) counts on its console and writes each tick to its disk; it moves to a
`vessel vm migrate-receive` on this host, which is handed the memfd over the Unix socket
and maps the same pages, so no page of RAM is copied; and on again to a second receiver.
The count goes on with no gap and no repeat, the disk holds every tick, the destination
maps the very memfd; and copied to a third receiver as any migration goes, it has a memfd
of its own there. A receiver that refuses after it was handed the memfd leaves the
source running; --local to a TCP address, or of a VM without shared memory, is refused
before anything is sent.

Boots VMs: marked kvm (hardware KVM, or inside tests/kvmhost/run).
"""
import re
import signal
import time

import pytest

from test_vm_api import COUNTER, DISK_BLOCKS  # noqa: F401
from test_vm_api import spec  # noqa: F401 (fixture)
from test_vm_migrate import (BOOT_TIMEOUT, TICK_TIMEOUT, Receiver, all_ticks, boot,
                             consecutive, exited, migrate_send, migrate_status)
from test_vm_snapshot import disk_ticks

pytestmark = pytest.mark.kvm

MEM_MIB = 128


def ram_mappings(pid):
    """The sizes (bytes) of the process's mappings of a memfd named vessel-guest-ram."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if "memfd:vessel-guest-ram" in line:
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                out.append(hi - lo)
    return out


def ram_inode(pid):
    """The memfd's inode number, as /proc/PID/maps gives it (the same file on both ends)."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            if "memfd:vessel-guest-ram" in line:
                return int(line.split()[4])
    return None


VMGENID_GPA = 0xdf000  # src/vmm/layout.h LAYOUT_VMGENID


def genid(pid):
    """The 16-byte VM generation ID as it is in the guest's RAM now (the memfd mapping's
    start is guest-physical 0: one region for a guest this small)."""
    with open(f"/proc/{pid}/maps") as f:
        lo = next(int(line.split("-")[0], 16) for line in f
                  if "memfd:vessel-guest-ram" in line)
    with open(f"/proc/{pid}/mem", "rb") as m:
        m.seek(lo + VMGENID_GPA)
        return m.read(16).hex()


def sent_mib(out):
    m = re.search(r"([\d.]+) MiB sent, downtime ([\d.]+) ms", out)
    return (float(m.group(1)), float(m.group(2))) if m else (None, None)


def local_scenario(vessel, spec, d):
    s = {}
    disk = d / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(DISK_BLOCKS * 512)
    procs = []
    try:
        # the unshared VM first: --local of it is refused, it keeps running, then it goes
        plain, con_plain = boot(vessel, spec, d, "plain", COUNTER)
        procs.append(plain)
        s["plain_booted"] = con_plain.wait_ticks(3, BOOT_TIMEOUT, after=0)
        if s["plain_booted"]:
            s["plain_put"] = plain.call("PUT", "/migrate", {
                "destination_url": f"unix:{d}/nobody.sock", "local": True})
            s["plain_ticks"] = con_plain.wait_ticks(2, TICK_TIMEOUT)
        plain.stop(signal.SIGKILL)
        procs.remove(plain)

        src, con_src = boot(vessel, spec, d, "src", COUNTER, mem_mib=MEM_MIB, disk=disk,
                            machine={"mem_shared": True})
        procs.append(src)
        s["booted"] = con_src.wait_ticks(5, BOOT_TIMEOUT, after=0)
        if not s["booted"]:
            s["console"] = con_src.text()[-3000:]
            return s
        s["src_ram"] = ram_mappings(src.proc.pid)
        s["src_inode"] = ram_inode(src.proc.pid)
        s["src_genid"] = genid(src.proc.pid)

        # ---- --local over TCP: refused at once, nothing sent
        s["tcp_put"] = src.call("PUT", "/migrate", {
            "destination_url": "tcp:127.0.0.1:9", "local": True})

        # ---- a receiver that takes the memfd, then refuses HELLO (another vCPU count):
        # the source never stopped, and its RAM is still its own
        rx = Receiver(vessel, spec, f"unix:{d}/refuse.sock", d / "refuse.txt",
                      ["--cpus", "2"])
        s["refuse_send"] = migrate_send(vessel, src, rx.url, "--local")
        s["refuse_rx"] = exited(rx.proc, 60)
        s["refuse_status"] = migrate_status(src)
        s["refuse_state"] = src.ok("GET", "/")["state"]
        s["refuse_ticks"] = con_src.wait_ticks(3, TICK_TIMEOUT)

        # ---- local to d1
        d1 = Receiver(vessel, spec, f"unix:{d}/d1.sock", d / "d1.txt")
        procs.append(d1)
        s["d1_send"] = migrate_send(vessel, src, d1.url, "--local")
        s["src_exit"] = exited(src.proc, 30)
        s["d1_api"] = d1.wait_api()
        s["d1_ticked"] = d1.console.wait_ticks(5, TICK_TIMEOUT, after=0)
        s["d1_ram"] = ram_mappings(d1.proc.pid)
        s["d1_inode"] = ram_inode(d1.proc.pid)
        s["d1_genid"] = genid(d1.proc.pid)

        # ---- and on, local again, from the VMM that was handed the memfd, to d2
        d2 = Receiver(vessel, spec, f"unix:{d}/d2.sock", d / "d2.txt")
        procs.append(d2)
        s["d2_send"] = migrate_send(vessel, d1.api, d2.url, "--local")
        s["d1_exit"] = exited(d1.proc, 30)
        s["d2_api"] = d2.wait_api()
        s["d2_ticked"] = d2.console.wait_ticks(5, TICK_TIMEOUT, after=0)
        s["d2_inode"] = ram_inode(d2.proc.pid)
        s["d2_genid"] = genid(d2.proc.pid)

        # ---- and, copied as any migration is, to d3: shared RAM moves the usual way too
        d3 = Receiver(vessel, spec, f"unix:{d}/d3.sock", d / "d3.txt")
        procs.append(d3)
        s["d3_send"] = migrate_send(vessel, d2.api, d3.url)
        s["d2_exit"] = exited(d2.proc, 30)
        s["d3_api"] = d3.wait_api()
        s["d3_ticked"] = d3.console.wait_ticks(5, TICK_TIMEOUT, after=0)
        s["d3_inode"] = ram_inode(d3.proc.pid)
        s["d3_genid"] = genid(d3.proc.pid)
        d3.api.ok("PATCH", "/vm", {"state": "Paused"})
        time.sleep(0.5)
        consoles = (con_src, d1.console, d2.console, d3.console)
        s["ticks"] = all_ticks(*consoles)
        s["per_vmm"] = [len(c.ticks()) for c in consoles]
        s["disk"] = disk_ticks(disk)
    finally:
        for p in procs:
            p.stop(signal.SIGKILL)
    return s


@pytest.fixture(scope="module")
def local(vessel, spec, tmp_path_factory):
    return local_scenario(vessel, spec, tmp_path_factory.mktemp("miglocal"))


def test_guest_with_shared_memory_boots_on_a_memfd(local):
    assert local["booted"], local.get("console")
    assert local["src_ram"] == [MEM_MIB << 20], local["src_ram"]


def test_local_of_a_vm_without_shared_memory_is_refused(local):
    assert local["plain_booted"]
    status, body = local["plain_put"]
    assert status == 400 and "not shared" in body["fault_message"], body
    assert local["plain_ticks"], "the VM stopped counting"


def test_local_over_tcp_is_refused(local):
    status, body = local["tcp_put"]
    assert status == 400 and "Unix socket" in body["fault_message"], body


def test_a_refusal_after_the_memfd_went_leaves_the_source_running(local):
    rc, out, err = local["refuse_send"]
    assert rc != 0 and "refused" in err and "vCPUs" in err, err
    rx_rc, rx_err = local["refuse_rx"]
    assert rx_rc != 0 and "vCPUs" in rx_err, rx_err
    st = local["refuse_status"]
    assert st["state"] == "failed" and st["pages_sent"] == 0, st
    assert local["refuse_state"] == "Running"
    assert local["refuse_ticks"], "the source stopped counting"


def test_local_migration_hands_over_the_ram_instead_of_copying_it(local):
    rc, out, err = local["d1_send"]
    assert rc == 0 and "migrated to unix:" in out, (out, err)
    mib, downtime = sent_mib(out)
    # the state file (vCPUs, chips, devices) and the messages: no page of the 128 MiB
    assert mib is not None and mib < 1, out
    print(f"\nlocal migration of a {MEM_MIB} MiB guest: {out.strip()}")
    src_rc, src_err = local["src_exit"]
    assert src_rc == 0 and "migrated to unix:" in src_err, local["src_exit"]
    assert local["d1_api"] and local["d1_ticked"]
    # the destination maps the source's very memfd (the same inode), whole
    assert local["d1_ram"] == [MEM_MIB << 20], local["d1_ram"]
    assert local["d1_inode"] == local["src_inode"] is not None


def test_the_destination_hands_it_on(local):
    rc, out, err = local["d2_send"]
    assert rc == 0 and sent_mib(out)[0] < 1, (out, err)
    assert local["d1_exit"][0] == 0, local["d1_exit"]
    # a device that met a bad ring in the guest's RAM says so and stops: none did
    for k in ("src_exit", "d1_exit"):
        assert "needs a reset" not in local[k][1], (k, local[k][1])
    assert local["d2_api"] and local["d2_ticked"]
    assert local["d2_inode"] == local["src_inode"]


def test_a_shared_ram_vm_also_migrates_by_copy(local):
    rc, out, err = local["d3_send"]
    assert rc == 0 and "migrated to unix:" in out, (out, err)
    mib, _ = sent_mib(out)
    assert mib is not None and mib >= 1, out  # the guest's pages went this time
    assert local["d2_exit"][0] == 0, local["d2_exit"]
    assert local["d3_api"] and local["d3_ticked"]
    # the destination made its own shared RAM (the config says mem_shared): another memfd
    assert local["d3_inode"] not in (None, local["src_inode"]), local["d3_inode"]
    print(f"\nthe same guest copied: {out.strip()}")


def test_the_count_has_no_gap_and_no_repeat(local):
    ticks = local["ticks"]
    assert ticks and ticks[0] == 0 and consecutive(ticks), ticks
    assert all(n >= 5 for n in local["per_vmm"]), local["per_vmm"]


def test_the_disk_holds_every_tick(local):
    disk = local["disk"]
    assert disk and consecutive(disk) and disk[0] == 0, disk
    assert disk[-1] >= local["ticks"][-1] - 1, (disk[-1], local["ticks"][-1])


def test_the_moved_vm_keeps_its_generation_id(local):
    """A migration is not a duplicate: every destination, local or copied, keeps the ID
    the source had (only a snapshot's load makes a new generation: test_vm_snapshot)."""
    ids = [local[k] for k in ("src_genid", "d1_genid", "d2_genid", "d3_genid")]
    assert ids[0] != "00" * 16, "the source has an ID"
    assert ids == [ids[0]] * 4, ids
