"""The default guest (Debian's cloud kernel + the busybox initramfs, images/) booted to init
under `vessel vm run`, every check made on what the guest itself reports.

Each boot is costly where these tests usually run (the emulated KVM host: Linux under
nested TCG takes tens of seconds to reach /init), so one boot serves several tests: a
module fixture boots once, runs a shell script in the guest that prints `T:KEY value`
lines, and each test asserts one behaviour from those lines. Four boots in all:

- pvh: vmlinux through its PVH note, 2 vCPUs, 4 GiB (across the PCI hole), two disks (one
  read-only), virtio-rng; the script exits 7; init powers off with `poweroff -f`.
- bzimage: no --kernel (images/out/vmlinuz), 1 vCPU, 256 MiB, virtio-net on a tap in a
  network namespace: ping and a TCP transfer each way.
- elf: vmlinux with its PVH note renamed (the only way to make vessel take the 64-bit ELF
  entry for the same kernel), 4 vCPUs, ends with `reboot -f`.
- console: no command, so init runs a shell on the serial console, driven through a pty;
  the shell answers, then the kernel panics with panic=-1.

The early-boot checks of the former test_vm_linux.py (written when only kvm_pvm hosts were
at hand, where Linux never reaches init) live on in the PVH boot: the kernel's own log,
read with dmesg in the guest, shows our command line, e820 map, ACPI tables and CPUs.
"""
import hashlib
import os
import pathlib
import pty
import re
import select
import struct
import subprocess
import time
import uuid
import warnings

import pytest

from conftest import ROOT, kvm_trace, run, vessel_path

# every test here boots a VM: tests/kvm.sh runs them where there is hardware KVM
pytestmark = pytest.mark.kvm

# Linux under nested TCG reaches /init in ~40 s of a shared emulated host: be generous, but
# a hung guest must not eat the whole suite's time
BOOT_TIMEOUT = 400
# for boots whose end is the thing tested (reboot, panic): a guest that hangs there fails
# sooner
END_TIMEOUT = 240
QUIET = "console=ttyS0 panic=-1 quiet"
MiB = 1 << 20
HOST_IP, GUEST_IP = "10.99.0.1", "10.99.0.2"
GUEST_MAC = "52:54:00:12:34:56"


def images_dir():
    """Where vessel itself looks: $VESSEL_IMAGES, else <dir of vessel>/../images/out; the
    source tree's images/out serves binaries built elsewhere."""
    candidates = [os.environ.get("VESSEL_IMAGES"),
                  pathlib.Path(vessel_path()).resolve().parent.parent / "images" / "out",
                  ROOT / "images" / "out"]
    for c in candidates:
        if c and all((pathlib.Path(c) / f).is_file() for f in ("vmlinux", "vmlinuz",
                                                               "initrd.img")):
            return pathlib.Path(c)
    pytest.fail("images/out/{vmlinux,vmlinuz,initrd.img} missing: run `make images`")


class Boot:
    """One finished `vessel vm run`: its status, the console's lines, stderr, wall time."""

    def __init__(self, rc, out, err, seconds):
        self.rc, self.err, self.seconds = rc, err, seconds
        self.lines = [line.rstrip("\r") for line in out.split("\n")]

    def values(self, key):
        """The rest of every `T:KEY ...` line the guest script printed."""
        tag = f"T:{key} "
        return [line[len(tag):].strip() for line in self.lines if line.startswith(tag)]

    def value(self, key):
        v = self.values(key)
        assert len(v) == 1, f"expected one T:{key} line, got {v}\n{self}"
        return v[0]

    def guest_status(self):
        s = [line for line in self.lines if line.startswith("vessel-guest: exit status ")]
        return int(s[-1].rsplit(" ", 1)[1]) if s else None

    def __str__(self):
        return ("--- console (last 60 lines):\n" + "\n".join(self.lines[-60:]) +
                f"\n--- exit {self.rc} after {self.seconds:.1f} s; stderr:\n{self.err[-3000:]}" +
                (f"\n{kvm_trace()}" if "triple fault" in self.err else ""))


def vm_run(vessel, args, script=None, prefix=(), timeout=BOOT_TIMEOUT, debug=False):
    """Boots with `args`; `script` is run by init as `sh -c SCRIPT` (the kernel command line
    carries it, so it has no double quotes and no newlines)."""
    cmd = [*prefix, vessel, *(["--debug"] if debug else []), "vm", "run", *args]
    if script is not None:
        assert '"' not in script and "\n" not in script
        cmd += ["--", "sh", "-c", script]
    env = dict(os.environ, VESSEL_IMAGES=str(images_dir()))
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # a hung guest is a finding, not an error of the fixture: keep what it printed
        p.kill()
        out, err = p.communicate()
        err += f"\n(test: killed after {timeout} s)"
        return Boot(None, out, err, time.monotonic() - t0)
    return Boot(p.returncode, out, err, time.monotonic() - t0)


def once_more_on_triple_fault(boot_fn):
    """Runs boot_fn() (one whole boot: inputs made afresh, then the VM) and, when its guest
    triple-faulted inside the emulated KVM host, runs it once more. Under QEMU 7.2 as that
    host, guests there reset themselves now and then at random points (idle CPUs whose
    kernel text had become unmapped: most likely 7.2's non-atomic page-table accessed/dirty
    updates in multi-threaded TCG; the host now runs QEMU 10, docs/testing.md). Kept so
    that a fault that remains shows as a warning, with KVM's trace, rather than being
    retried silently or failing CI on the emulator's account; a second triple fault in a
    row fails the tests, and on hardware KVM the first one does."""
    boot = boot_fn()
    if os.environ.get("VESSEL_KVMHOST") == "inside" and boot.rc == 4 and "triple fault" in boot.err:
        warnings.warn("the guest triple-faulted in the emulated KVM host; booting once more\n"
                      f"{boot}\n{kvm_trace()}")
        boot = boot_fn()
    return boot


def sh(*commands):
    return "; ".join(commands)


# What every boot reports: CPUs, memory (`free`), how it was loaded (the boot_params'
# type_of_loader: Linux's PVH entry on a non-Xen hypervisor sets 0xb0, QEMU's loader id;
# vessel's 64-bit boot protocol leaves 0xff, "undefined") and the guest's uptime then.
FACTS = sh("echo T:CPUS $(nproc)",
           "echo T:FREE $(free -k | grep Mem:)",
           "echo T:LOADER $(od -An -tx1 -j528 -N1 /sys/kernel/boot_params/data)",
           "echo T:UPTIME $(cut -d' ' -f1 /proc/uptime)")


def mem_total_kib(boot):
    fields = boot.value("FREE").split()
    assert fields[0] == "Mem:", boot
    return int(fields[1])


# ------------------------------------------------------------------ PVH, 4 GiB, disks, rng

DATA_SIZE = 8 * MiB
RO_SIZE = 1 * MiB


@pytest.fixture(scope="module")
def pvh(vessel, tmp_path_factory):
    return once_more_on_triple_fault(lambda: boot_pvh(vessel, tmp_path_factory.mktemp("pvh")))


def boot_pvh(vessel, d):
    data, ro = d / "data.img", d / "ro.img"
    first = os.urandom(MiB)
    data.write_bytes(first + bytes(DATA_SIZE - MiB))
    ro.write_bytes(os.urandom(RO_SIZE))
    ro_sum = hashlib.sha256(ro.read_bytes()).hexdigest()
    images = images_dir()
    script = sh(
        FACTS,
        # the host's bytes, as the guest reads them
        "echo T:VDA_SIZE $(cat /sys/block/vda/size)",
        "echo T:VDA_SERIAL $(cat /sys/block/vda/serial)",
        "echo T:VDA_READ $(dd if=/dev/vda bs=64k count=16 2>/dev/null | sha256sum)",
        # entropy from the host, written to the disk at 2 MiB and synced (a flush)
        "echo T:RNG_CURRENT $(cat /sys/class/misc/hw_random/rng_current)",
        "dd if=/dev/hwrng of=/tmp/r bs=4096 count=1 2>/dev/null",
        "echo T:RNG $(wc -c </tmp/r) $(od -An -v -tx1 /tmp/r | tr -s ' ' '\\n' | sort -u | wc -l)",
        "echo T:RNG_SUM $(sha256sum </tmp/r)",
        "dd if=/tmp/r of=/dev/vda bs=4096 seek=512 conv=fsync 2>/dev/null; echo T:WRITE_RNG $?",
        # a bigger write: the first MiB copied to 4 MiB, then sync
        "dd if=/dev/vda of=/dev/vda bs=64k count=16 seek=64 2>/dev/null; echo T:WRITE_COPY $?",
        "sync; echo T:SYNC $?",
        # the read-only disk: readable, flagged, and a write is refused
        "echo T:VDB_READ $(sha256sum </dev/vdb)",
        "echo T:VDB_RO $(cat /sys/block/vdb/ro)",
        "echo vessel >/tmp/w; dd if=/tmp/w of=/dev/vdb conv=fsync 2>/dev/null; echo T:VDB_WRITE $?",
        # what the kernel logged about the machine vessel made
        "dmesg | grep -E 'Command line:|BIOS-e820|ACPI: (RSDP|XSDT|FACP|APIC|DSDT) |IOAPIC.0.|"
        "INT_SRC_OVR|MADT|Allowing|Hypervisor detected|ACPI (BIOS )?Error|smpboot: Total' "
        "| sed 's/^/T:DMESG /'",
        "exit 7")
    boot = vm_run(vessel, ["--kernel", str(images / "vmlinux"),
                           "--initrd", str(images / "initrd.img"), "--cmdline", QUIET,
                           "--cpus", "2", "--memory", "4G",
                           "--disk", f"{data},id=vessel-data", "--disk", f"{ro},ro", "--rng"],
                  script, debug=True)
    boot.data, boot.first, boot.ro, boot.ro_sum = data, first, ro, ro_sum
    return boot


def test_pvh_vmlinux_boots_to_init_and_the_command_status_comes_back(pvh):
    assert "kernel `" in pvh.err and "PVH ELF" in pvh.err, pvh
    assert pvh.value("LOADER") == "b0", f"not entered through PVH\n{pvh}"
    assert pvh.guest_status() == 7, f"the guest's command status did not come back\n{pvh}"


def test_poweroff_ends_vm_run_with_status_0(pvh):
    # init ends with `poweroff -f`: ACPI S5, status 0 (docs/vm.md)
    assert pvh.rc == 0, pvh


def test_two_vcpus(pvh):
    assert pvh.value("CPUS") == "2", pvh


def test_4g_guest_sees_its_memory_across_the_pci_hole(pvh):
    e820 = [m.groups() for m in (re.search(r"BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable",
                                           line) for line in pvh.values("DMESG")) if m]
    usable = [(int(a, 16), int(b, 16) + 1) for a, b in e820]
    assert usable == [(0, 0x9FC00), (0x100000, 0xC0000000), (1 << 32, (1 << 32) + (1 << 30))], pvh
    # MemTotal is RAM less what the kernel keeps (its image, page structs): a few percent
    total = mem_total_kib(pvh)
    assert 3900 * 1024 < total <= 4096 * 1024, f"MemTotal {total} KiB\n{pvh}"


def test_the_kernel_logs_our_command_line_and_acpi_tables(pvh):
    log = pvh.values("DMESG")
    text = "\n".join(log) + f"\n{pvh}"

    def has(pattern):
        return any(re.search(pattern, line) for line in log)

    assert has(r"Command line: " + re.escape(QUIET) + r" virtio_mmio\.device=4K@0xd0000000:5 "), text
    rsdp = [re.search(r"ACPI: RSDP 0x([0-9A-F]+) .*\(v02 ", line) for line in log]
    rsdp = [int(m.group(1), 16) for m in rsdp if m]
    assert len(rsdp) == 1 and 0xE0000 <= rsdp[0] < 0x100000, text
    for table in ("XSDT", "FACP", "APIC", "DSDT"):
        assert has(rf"ACPI: {table} 0x[0-9A-F]+ "), f"no {table}\n{text}"
    assert has(r"IOAPIC\[0\]: apic_id 0, version \d+, address 0xfec00000, GSI 0-\d+"), text
    assert has(r"INT_SRC_OVR \(bus 0 bus_irq 0 global_irq 2 "), text
    assert has(r"Using ACPI \(MADT\) for SMP configuration"), text
    assert has(r"Allowing 2 CPUs, 0 hotplug CPUs"), text
    assert has(r"Hypervisor detected: KVM"), text
    assert not has(r"ACPI (BIOS )?Error"), text


def test_disk_reads_the_hosts_bytes(pvh):
    assert int(pvh.value("VDA_SIZE")) == DATA_SIZE // 512, pvh
    assert pvh.value("VDA_SERIAL") == "vessel-data", pvh
    assert pvh.value("VDA_READ").split()[0] == hashlib.sha256(pvh.first).hexdigest(), pvh


def test_rng_gives_random_bytes(pvh):
    assert pvh.value("RNG_CURRENT").startswith("virtio_rng"), pvh
    count, distinct = map(int, pvh.value("RNG").split())
    assert count == 4096, pvh
    # 4096 random bytes take nearly all 256 values; a stuck or zero source takes few
    assert distinct > 240, f"{distinct} distinct byte values\n{pvh}"


def test_guest_writes_are_in_the_host_file_after_poweroff(pvh):
    assert pvh.value("WRITE_RNG") == "0" and pvh.value("WRITE_COPY") == "0", pvh
    assert pvh.value("SYNC") == "0", pvh
    file = pvh.data.read_bytes()
    rng = file[2 * MiB:2 * MiB + 4096]
    assert hashlib.sha256(rng).hexdigest() == pvh.value("RNG_SUM").split()[0], pvh
    assert file[4 * MiB:5 * MiB] == pvh.first, "the copied MiB is not in the file"
    assert file[:MiB] == pvh.first and file[MiB:2 * MiB] == bytes(MiB), "bytes not written changed"


def test_read_only_disk_is_read_and_refuses_writes(pvh):
    assert pvh.value("VDB_READ").split()[0] == pvh.ro_sum, pvh
    assert pvh.value("VDB_RO") == "1", f"vdb not read-only in the guest\n{pvh}"
    assert pvh.value("VDB_WRITE") != "0", f"a write to the read-only disk succeeded\n{pvh}"
    assert hashlib.sha256(pvh.ro.read_bytes()).hexdigest() == pvh.ro_sum, "ro image changed"


# ------------------------------------------------------------------ bzImage, 256 MiB, virtio-net

TCP_SIZE = 4 * MiB

# In the test's network namespace: port 7001 takes a stream until EOF and answers with its
# length and SHA-256; port 7002 sends TCP_SIZE random bytes and closes. Prints both sums.
TCP_SERVER = r"""
import hashlib, os, socket, sys
host, size, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sink, source = socket.socket(), socket.socket()
for s, port in ((sink, 7001), (source, 7002)):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(1)
    s.settimeout(timeout)
print("LISTENING", flush=True)
c, _ = sink.accept()
c.settimeout(timeout)
h, n = hashlib.sha256(), 0
while data := c.recv(1 << 16):
    h.update(data)
    n += len(data)
print("RECEIVED", n, h.hexdigest(), flush=True)
c.sendall(f"{n} {h.hexdigest()}\n".encode())
c.close()
c, _ = source.accept()
c.settimeout(timeout)
data = os.urandom(size)
c.sendall(data)
c.close()
print("SENT", size, hashlib.sha256(data).hexdigest(), flush=True)
"""


def ip(*args, check=True):
    r = run(["ip", *args], timeout=30)
    if check:
        assert r.returncode == 0, f"ip {' '.join(args)}: {r.stderr}"
    return r


@pytest.fixture(scope="module")
def bzimage(vessel):
    ns = "vslinux-" + uuid.uuid4().hex[:8]
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "tuntap", "add", "dev", "vtap0", "mode", "tap")
        ip("-n", ns, "addr", "add", f"{HOST_IP}/24", "dev", "vtap0")
        ip("-n", ns, "link", "set", "vtap0", "up")
        yield once_more_on_triple_fault(lambda: boot_bzimage(vessel, ns))
    finally:
        ip("netns", "del", ns, check=False)


def boot_bzimage(vessel, ns):
    """The guest talks to a fresh TCP server in the namespace `ns`, which holds vtap0."""
    server = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
                               TCP_SERVER, HOST_IP, str(TCP_SIZE), str(BOOT_TIMEOUT)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "LISTENING", server.stderr.read()
        script = sh(
            FACTS,
            "echo T:MAC $(cat /sys/class/net/eth0/address)",
            f"ip addr add {GUEST_IP}/24 dev eth0 && ip link set eth0 up; echo T:IP $?",
            f"ping -c 3 -w 60 {HOST_IP} | grep -E 'transmitted|bytes from' | sed 's/^/T:PING /'",
            "dd if=/dev/urandom of=/tmp/tx bs=64k count=64 2>/dev/null",
            "echo T:TX_SUM $(wc -c </tmp/tx) $(sha256sum </tmp/tx)",
            f"echo T:TX_HOST $(nc {HOST_IP} 7001 </tmp/tx)",
            f"nc {HOST_IP} 7002 </dev/null >/tmp/rx; echo T:RX_NC $?",
            "echo T:RX_SUM $(wc -c </tmp/rx) $(sha256sum </tmp/rx)")
        # no --kernel: the default image's bzImage (images/out/vmlinuz) and initrd
        boot = vm_run(vessel, ["--cmdline", QUIET, "--memory", "256M",
                               "--net", f"tap=vtap0,mac={GUEST_MAC}"],
                      script, prefix=("ip", "netns", "exec", ns), debug=True)
        try:
            out, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            out, err = server.communicate()
        boot.server = out + err
        return boot
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_bzimage_is_the_default_and_boots_to_init(bzimage):
    assert "Linux bzImage" in bzimage.err, bzimage
    assert bzimage.value("LOADER") == "ff", f"not entered through the boot protocol\n{bzimage}"
    assert bzimage.rc == 0 and bzimage.guest_status() == 0, bzimage


def test_one_vcpu_and_256m(bzimage):
    assert bzimage.value("CPUS") == "1", bzimage
    total = mem_total_kib(bzimage)
    # 256 MiB less the kernel's own image and reservations
    assert 200 * 1024 < total <= 256 * 1024, f"MemTotal {total} KiB\n{bzimage}"


def test_eth0_has_our_mac_and_pings_the_host(bzimage):
    assert bzimage.value("MAC") == GUEST_MAC, bzimage
    assert bzimage.value("IP") == "0", bzimage
    ping = bzimage.values("PING")
    assert len([p for p in ping if f"bytes from {HOST_IP}" in p]) == 3, bzimage
    assert "3 packets transmitted, 3 packets received" in ping[-1], bzimage


def test_tcp_transfer_guest_to_host_arrives_intact(bzimage):
    n, digest = bzimage.value("TX_SUM").split()[:2]
    assert int(n) == TCP_SIZE, bzimage
    # the host's count and sum, as the guest's nc received them back
    assert bzimage.value("TX_HOST") == f"{TCP_SIZE} {digest}", f"{bzimage}\n{bzimage.server}"
    assert f"RECEIVED {TCP_SIZE} {digest}" in bzimage.server, bzimage.server


def test_tcp_transfer_host_to_guest_arrives_intact(bzimage):
    sent = re.search(r"SENT (\d+) ([0-9a-f]{64})", bzimage.server)
    assert sent, bzimage.server
    assert bzimage.value("RX_NC") == "0", bzimage
    n, digest = bzimage.value("RX_SUM").split()[:2]
    assert (int(n), digest) == (int(sent.group(1)), sent.group(2)), bzimage


# ------------------------------------------------------------------ ELF vmlinux, 4 vCPUs, reboot

def without_pvh_note(src, dst):
    """A copy of an ELF vmlinux whose PVH entry note (Xen, type 18) has another type, so that
    vessel boots it as a plain ELF vmlinux at e_entry with the 64-bit boot protocol."""
    data = bytearray(pathlib.Path(src).read_bytes())
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    renamed = 0
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data,
                                                                  phoff + i * phentsize)
        off, end = p_offset, p_offset + p_filesz
        while p_type == 4 and end - off >= 12:
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            if ntype == 18 and data[off + 12:off + 16] == b"Xen\0":
                struct.pack_into("<I", data, off + 8, 0x7fff)
                renamed += 1
            off += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    assert renamed == 1, f"{src}: {renamed} PVH notes"
    pathlib.Path(dst).write_bytes(data)


@pytest.fixture(scope="module")
def elf(vessel, tmp_path_factory):
    images = images_dir()
    vmlinux = tmp_path_factory.mktemp("elf") / "vmlinux-nopvh"
    without_pvh_note(images / "vmlinux", vmlinux)
    return once_more_on_triple_fault(lambda: vm_run(vessel, ["--kernel", str(vmlinux), "--initrd", str(images / "initrd.img"),
                           "--cmdline", QUIET, "--cpus", "4",
                           "--memory", "256M"],
                  sh(FACTS, "reboot -f"), timeout=END_TIMEOUT, debug=True))


def test_elf_vmlinux_boots_to_init(elf):
    assert "ELF vmlinux (64-bit entry)" in elf.err, elf
    assert elf.value("LOADER") == "ff", elf


def test_four_vcpus(elf):
    assert elf.value("CPUS") == "4", elf


def test_reboot_ends_vm_run_with_status_3(elf):
    # the guest never got back to init's own status line
    assert elf.guest_status() is None, elf
    assert elf.rc == 3, elf
    # Linux's default restart with a hardware-reduced FADT ends at the BIOS reset vector,
    # where vessel's stub writes the ACPI reset register (docs/vm.md, How Linux restarts)
    assert "VM stops: ACPI reset register" in elf.err, elf


# ------------------------------------------------------------------ the console, a panic

def read_until(fd, pattern, deadline, seen):
    """Reads the pty until `pattern` matches what came after `seen[0]` was last cut."""
    while time.monotonic() < deadline:
        m = re.search(pattern, seen[0])
        if m:
            seen[0] = seen[0][m.end():]
            return m
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            seen[0] += data.decode(errors="replace")
            seen[1] += data.decode(errors="replace")
    return None


@pytest.fixture(scope="module")
def console(vessel):
    """No command: init runs a shell on the console. A pty is vessel's stdin and stdout, as a
    terminal would be; the test types into it."""
    master, slave = pty.openpty()
    env = dict(os.environ, VESSEL_IMAGES=str(images_dir()))
    t0 = time.monotonic()
    p = subprocess.Popen([vessel, "--debug", "vm", "run", "--cmdline", QUIET,
                          "--memory", "256M"], stdin=slave, stdout=slave,
                         stderr=subprocess.PIPE, env=env, close_fds=True)
    os.close(slave)
    seen = ["", ""]
    deadline = time.monotonic() + END_TIMEOUT
    result, rc = {}, None
    try:
        # busybox's prompt for root; then a command whose answer is not its own echo
        result["prompt"] = read_until(master, r"# ", deadline, seen) is not None
        result["prompt_s"] = round(time.monotonic() - t0, 1)
        os.write(master, b"echo T:ANSWER $((6 * 7))\r")
        # up to the line's end: a read may stop between the answer's two digits. vessel
        # keeps OPOST on its terminal, so the guest's "\r\n" arrives as "\r\r\n"
        result["answer"] = read_until(master, r"T:ANSWER (\d+)\r*\n", deadline, seen)
        result["answer"] = result["answer"] and result["answer"].group(1)
        result["answer_s"] = round(time.monotonic() - t0, 1)
        os.write(master, b"echo c >/proc/sysrq-trigger\r")
        result["panic"] = read_until(master, r"Kernel panic", deadline, seen) is not None
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        read_until(master, r"(?!)", time.monotonic() + 1, seen)
        os.close(master)
    boot = Boot(rc, seen[1], p.stderr.read().decode(errors="replace"), time.monotonic() - t0)
    boot.result = result
    boot.err = f"(console steps: {result})\n" + boot.err
    return boot


def test_serial_console_shell_answers(console):
    assert console.result["prompt"], f"no shell prompt\n{console}"
    assert console.result["answer"] == "42", str(console)


def test_kernel_panic_ends_vm_run_with_status_3(console):
    # panic=-1: the kernel reboots at once, which vessel reports as a reset (docs/vm.md)
    assert console.result["panic"], str(console)
    assert console.rc == 3, str(console)
