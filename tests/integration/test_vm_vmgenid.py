"""The VM generation ID (devices/vmgenid.c) as a real Linux guest sees it: the DSDT's
VMGENCTR device and Generic Event Device, disassembled by iasl; then a guest kernel built
with CONFIG_VMGENID boots, binds its vmgenid driver to the device and the GED driver to the
GED (with its interrupt), reads the very ID vessel wrote at the advertised address, and
logs no ACPI error or warning.

The kernel is chosen, not assumed (guest_kernels.vmgenid_kernel): today the emulated KVM
host's generic one, the default guest's cloud kernel having no CONFIG_VMGENID.

That a snapshot load changes the ID and notifies the guest: tests/unit/test_vmm_vmgenid.c
(the device), test_vm_snapshot.py's clones (a real guest reseeding its RNG)."""
import re
import subprocess

import pytest

from conftest import run
from guest_kernels import vmgenid_kernel
from test_linux import QUIET, images_dir, once_more_on_triple_fault, sh, vm_run

VMGENID_ADDR = 0xDF000  # LAYOUT_VMGENID
GED_GSI = 23


def iasl_dsdt(vessel, d):
    r = run([vessel, "vm", "dump-acpi", str(d)])
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["iasl", "-d", "dsdt.dat"], capture_output=True, text=True,
                       timeout=60, cwd=d)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert not re.search(r"\b(error|warning)s?\b", out, re.I) or \
        re.search(r"\b0 Errors?, 0 Warnings?", out, re.I), out
    return (d / "dsdt.dsl").read_text()


def test_dsdt_declares_the_id_and_a_ged_that_notifies_it(vessel, tmp_path):
    dsl = iasl_dsdt(vessel, tmp_path)
    vgen = dsl[dsl.index("Device (VGEN)"):]
    vgen = vgen[:vgen.index("Device (GED)")]
    assert 'Name (_HID, "VMGENCTR")' in vgen
    assert 'Name (_CID, "VM_GEN_COUNTER")' in vgen
    # ADDR: a package of the address's low and high DWORDs
    m = re.search(r"Method \(ADDR, 0[^{]*\{\s*Return \(Package \(0x02\)\s*\{\s*"
                  r"(0x[0-9A-F]+|Zero),\s*(0x[0-9A-F]+|Zero)\s*\}", vgen)
    assert m, vgen
    lo, hi = (0 if v == "Zero" else int(v, 16) for v in m.groups())
    assert (hi << 32) | lo == VMGENID_ADDR
    ged = dsl[dsl.index("Device (GED)"):]
    assert 'Name (_HID, "ACPI0013"' in ged
    assert re.search(r"Interrupt \(ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, \)\s*"
                     r"\{\s*0x%08X,\s*\}" % GED_GSI, ged), ged
    assert re.search(r"Method \(_EVT, 1[^{]*\{\s*If \(\(Arg0 == 0x%02X\)\)\s*\{\s*"
                     r"Notify \(\\_SB\.VGEN, 0x80\)" % GED_GSI, ged), ged


@pytest.fixture(scope="module")
def guest(vessel):
    kernel, seen = vmgenid_kernel()
    if kernel is None:
        pytest.fail("no guest kernel with CONFIG_VMGENID=y at hand:\n  " + "\n  ".join(seen))
    script = sh(
        "echo T:ACPI_DEVICES $(ls /sys/bus/acpi/devices)",
        "echo T:VMGENID_BOUND $(ls /sys/bus/acpi/drivers/vmgenid "
        "/sys/bus/platform/drivers/vmgenid 2>/dev/null | grep VMGENCTR)",
        "echo T:GED_BOUND $(ls -d /sys/bus/platform/drivers/*/ACPI0013:00)",
        "echo T:GED_IRQ $(grep -i ged /proc/interrupts)",
        # the 16 bytes at the address ADDR gave, through /dev/mem (the first MiB is open)
        f"echo T:ID $(dd if=/dev/mem bs=16 skip={VMGENID_ADDR // 16} count=1 2>/dev/null "
        "| od -An -v -tx1 | tr -d ' ')",
        "dmesg | grep -iE 'ACPI.*(error|warn)|vmgenid|GED' | sed 's/^/T:DMESG /'")
    boot = once_more_on_triple_fault(lambda: vm_run(
        vessel, ["--kernel", str(kernel), "--initrd", str(images_dir() / "initrd.img"),
                 "--cmdline", QUIET, "--memory", "256M"], script, debug=True))
    assert boot.guest_status() == 0, f"kernel {kernel}\n{boot}"
    boot.kernel = kernel
    return boot


@pytest.mark.kvm  # boots Linux: tests/kvm.sh runs it where there is hardware KVM
def test_the_guest_sees_the_id_device_and_binds_vmgenid(guest):
    assert "VMGENCTR:00" in guest.value("ACPI_DEVICES").split(), guest
    assert guest.value("VMGENID_BOUND") == "VMGENCTR:00", guest


@pytest.mark.kvm
def test_the_ged_is_bound_with_its_interrupt(guest):
    # Linux's evged.c registers as acpi-ged
    assert guest.value("GED_BOUND") == "/sys/bus/platform/drivers/acpi-ged/ACPI0013:00", guest
    # /proc/interrupts: "25: 0 IO-APIC 23-edge ACPI:Ged" (Linux's own IRQ number first)
    assert re.search(r"\bIO-APIC %d-edge ACPI:Ged$" % GED_GSI, guest.value("GED_IRQ")), guest


@pytest.mark.kvm
def test_the_guest_reads_the_id_vessel_wrote(guest):
    wrote = re.findall(r"vmgenid: generation ID ([0-9a-f]{32}) at 0x([0-9a-f]+)", guest.err)
    assert len(wrote) == 1, guest
    assert int(wrote[0][1], 16) == VMGENID_ADDR
    assert guest.value("ID") == wrote[0][0], guest


@pytest.mark.kvm
def test_no_acpi_error_or_warning(guest):
    # the kernel logs our script too (its command line): not a finding
    bad = [line for line in guest.values("DMESG")
           if re.search(r"ACPI.*(error|warn)", line, re.I) and "echo T:" not in line]
    assert not bad, guest
