"""Boots Debian's cloud kernel (images/out/vmlinux, PVH entry) with `vessel vm run`.

On a VT-x/AMD-V host this would reach /init. On kvm_pvm hosts guest kernel code is
interpreted and stock Linux stops at its int3 self-test with a KVM internal error, so the
test reads what the kernel itself logged before that (our command line, the e820 map, the
ACPI tables, the CPU count) and checks that vessel reports the internal error cleanly.
"""
import os
import pathlib
import re
import selectors
import shutil
import struct
import subprocess
import time

import pytest

from conftest import ROOT, run, vessel_path

# every test here boots a VM: tests/kvm.sh runs them where there is hardware KVM
pytestmark = pytest.mark.kvm

MEMORY = 512 << 20
CPUS = 2


def images_dir():
    """Where vessel itself looks: $VESSEL_IMAGES, else <dir of vessel>/../images/out; the
    source tree's images/out serves binaries built elsewhere (e.g. /tmp/build-x)."""
    candidates = [os.environ.get("VESSEL_IMAGES"),
                  pathlib.Path(vessel_path()).resolve().parent.parent / "images" / "out",
                  ROOT / "images" / "out"]
    for c in candidates:
        if c and (pathlib.Path(c) / "vmlinux").is_file():
            return pathlib.Path(c)
    pytest.fail("images/out/vmlinux missing: run `make images` (images/build.sh)")


def kvm_flavour():
    for m in ("kvm_intel", "kvm_amd", "kvm_pvm"):
        if os.path.isdir(f"/sys/module/{m}"):
            return m
    return "unknown"


def kernel_log(stdout):
    return [line.rstrip("\r") for line in stdout.split("\n")]


def code_byte(vmlinux, vaddr):
    """The byte of the ELF vmlinux's image at virtual address vaddr (None if not in it)."""
    data = pathlib.Path(vmlinux).read_bytes()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return data[p_offset + vaddr - p_vaddr]
    return None


@pytest.mark.slow
def test_linux_early_boot_sees_our_machine(vessel):
    images = images_dir()
    # noxsave and slub_debug=F keep the kernel off xrstor and cmpxchg16b, which kvm_pvm's
    # interpreter cannot run, so it gets as far as the int3 self-test
    cmdline = ("console=ttyS0 earlyprintk=serial,ttyS0,115200 noxsave slub_debug=F "
               "vessel.test=linux")
    cmd = [vessel, "vm", "run", "--kernel", str(images / "vmlinux"),
           "--initrd", str(images / "initrd.img"), "--cpus", str(CPUS), "--memory", "512M",
           "--cmdline", cmdline, "--", "echo", "hello"]
    r = run(cmd, timeout=400, stdin=subprocess.DEVNULL)
    log = kernel_log(r.stdout)
    text = "\n".join(log[-60:]) + "\n--- stderr:\n" + r.stderr

    def has(pattern):
        return any(re.search(pattern, line) for line in log)

    assert has(r"Linux version \d"), text
    assert has(r"Command line: " + re.escape(cmdline + " -- echo hello") + "$"), text

    # the memmap vessel passed, as the kernel's e820 table
    usable = [(int(a, 16), int(b, 16) + 1) for a, b in
              (re.search(r"BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] usable", line).groups()
               for line in log if re.search(r"BIOS-e820: .* usable$", line))]
    assert usable == [(0, 0x9FC00), (0x100000, MEMORY)], text

    rsdp = [re.search(r"ACPI: RSDP 0x([0-9A-F]+) .*\(v02 ", line) for line in log]
    rsdp = [int(m.group(1), 16) for m in rsdp if m]
    assert len(rsdp) == 1 and 0xE0000 <= rsdp[0] < 0x100000, text
    for table in ("XSDT", "FACP", "APIC", "DSDT"):
        assert has(rf"ACPI: {table} 0x[0-9A-F]+ "), f"no {table}\n{text}"
    # the MADT as Linux parsed it
    assert has(r"IOAPIC\[0\]: apic_id 0, version \d+, address 0xfec00000, GSI 0-\d+"), text
    assert has(r"INT_SRC_OVR \(bus 0 bus_irq 0 global_irq 2 "), text
    assert has(r"Using ACPI \(MADT\) for SMP configuration"), text
    assert has(rf"Allowing {CPUS} CPUs, 0 hotplug CPUs"), text
    assert has(r"Hypervisor detected: KVM"), text
    assert not has(r"ACPI BIOS Error|ACPI Error"), text

    if kvm_flavour() == "kvm_pvm":
        # the interpreter gives up on the int3 of the kernel's int3 self-test
        assert r.returncode == 5, f"exit {r.returncode}\n{text}"
        err = r.stderr.lower()
        assert re.search(r"internal.error", err), r.stderr
        assert "suberror" in err, r.stderr
        rip = re.search(r"\brip\W+(?:0x)?([0-9a-f]{16})\b", err)
        assert rip, r.stderr
        assert code_byte(images / "vmlinux", int(rip.group(1), 16)) == 0xCC, \
            f"not stopped at an int3\n{r.stderr}"
    else:
        # hardware virtualization: /init runs the command and powers off
        assert r.returncode == 0, text
        assert "vessel-guest: exit status 0" in log, text


@pytest.mark.slow
def test_without_kernel_the_default_bzimage_boots(vessel):
    """No --kernel: vessel finds images/out/vmlinuz + initrd.img and boots the bzImage with the
    64-bit boot protocol (its decompressor runs in the guest first). Stops once the kernel has
    logged the machine it found; the int3 end is the PVH test's."""
    images = images_dir()
    env = dict(os.environ, VESSEL_IMAGES=str(images))
    cmdline = "console=ttyS0 earlyprintk=serial,ttyS0,115200 noxsave slub_debug=F"
    p = subprocess.Popen([vessel, "vm", "run", "--memory", "256M", "--cmdline", cmdline, "--",
                          "echo", "hi"], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log, deadline = [], time.monotonic() + 300
    try:
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        buf = b""
        while time.monotonic() < deadline and not any("Allowing 1 CPUs" in x for x in log):
            if not sel.select(timeout=max(0.1, deadline - time.monotonic())):
                continue
            data = os.read(p.stdout.fileno(), 65536)
            if not data:
                break
            buf += data
            *done, buf = buf.split(b"\n")
            log += [x.decode(errors="replace").rstrip("\r") for x in done]
    finally:
        p.kill()
        _, err = p.communicate(timeout=30)
    text = "\n".join(log[-40:]) + "\n--- stderr:\n" + err.decode(errors="replace")
    assert any(re.search(r"Linux version \d", x) for x in log), text
    assert f"Command line: {cmdline} -- echo hi" in [x.split("] ", 1)[-1] for x in log], text
    assert any("RAMDISK: [mem " in x for x in log), f"no initrd\n{text}"
    assert any(re.search(r"BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable", x)
               for x in log), text
    assert any("Allowing 1 CPUs" in x for x in log), text


@pytest.mark.slow
def test_default_image_runs_the_command_and_reports_its_status():
    """The image itself (kernel, modules, /init) proven where Linux can run to the end: QEMU's
    microvm under TCG. /init loads the virtio modules, runs the words after ` -- ` and prints
    its exit status before powering off."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.fail("qemu-system-x86_64 missing (apt-get install qemu-system-x86)")
    images = images_dir()
    # TCG has no calibrated clock source on microvm: tell the kernel its TSC rate and lpj
    cmdline = ('console=ttyS0 quiet panic=-1 tsc_early_khz=2000000 lpj=8000000 -- '
               'sh -c "cut -d\\  -f1 /proc/modules; ls /sys/bus/virtio/drivers; exit 7"')
    r = run([qemu, "-M", "microvm", "-accel", "tcg", "-m", "256", "-display", "none",
             "-nodefaults", "-no-reboot", "-serial", "stdio", "-kernel", str(images / "vmlinux"),
             "-initrd", str(images / "initrd.img"), "-append", cmdline],
            timeout=300, stdin=subprocess.DEVNULL)
    log = kernel_log(r.stdout)
    text = "\n".join(log) + "\n--- stderr:\n" + r.stderr
    assert r.returncode == 0, text
    assert "vessel-guest: exit status 7" in log, text
    assert not [line for line in log if "cannot load module" in line], text
    for module in ("virtio_mmio", "virtio_blk", "virtio_net", "virtio_rng"):
        assert module in log, f"{module} not loaded\n{text}"
    # the drivers registered on the virtio bus (ls prints them on one line)
    assert ["virtio_blk", "virtio_net", "virtio_rng"] in [line.split() for line in log], text
