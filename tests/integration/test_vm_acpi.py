"""The ACPI tables vessel gives a VM, disassembled by iasl (acpica-tools): no error,
no warning, and the contents the guests rely on."""
import re
import struct
import subprocess

import pytest

from conftest import run

# every test here boots a VM: tests/kvm.sh runs them where there is hardware KVM
pytestmark = pytest.mark.kvm

TABLES = ["facp", "apic", "dsdt", "xsdt"]


def dump(vessel, path, cpus):
    r = run([vessel, "vm", "dump-acpi", "--cpus", str(cpus), str(path)])
    assert r.returncode == 0, r.stderr
    return path


def iasl(path):
    r = subprocess.run(["iasl", "-d", str(path)], capture_output=True, text=True, timeout=60,
                       cwd=path.parent)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert not re.search(r"\b(error|warning)s?\b", out, re.I) or \
        re.search(r"\b0 Errors?, 0 Warnings?", out, re.I), out
    return (path.parent / (path.stem + ".dsl")).read_text()


@pytest.mark.parametrize("cpus", [1, 2, 300])
def test_iasl_disassembles_every_table_cleanly(vessel, tmp_path, cpus):
    d = dump(vessel, tmp_path / "acpi", cpus)
    dsl = {t: iasl(d / f"{t}.dat") for t in TABLES}
    assert "Hardware Reduced (V5) : 1" in dsl["facp"]
    assert "Reset Register Supported (V2) : 1" in dsl["facp"]
    assert re.search(r"Value to cause reset : 01", dsl["facp"])
    lapics = len(re.findall(r"Subtable Type : 00 \[Processor Local APIC\]", dsl["apic"]))
    x2apics = len(re.findall(r"Subtable Type : 09 \[Processor Local x2APIC\]", dsl["apic"]))
    assert lapics + x2apics == cpus
    assert "Subtable Type : 01 [I/O APIC]" in dsl["apic"]
    assert "Subtable Type : 02 [Interrupt Source Override]" in dsl["apic"]
    assert 'EisaId ("PNP0501")' in dsl["dsdt"]
    assert "IO (Decode16,\n                    0x03F8," in dsl["dsdt"]
    assert re.search(r"IRQNoFlags \(\)\s*\{4\}", dsl["dsdt"])
    assert re.search(r"Name \(\\_S5, Package \(0x04\)[^{]*\{\s*0x05,", dsl["dsdt"])
    for t in TABLES:
        assert "Checksum" in dsl[t]


def test_rsdp_points_to_the_xsdt(vessel, tmp_path):
    # iasl (20200925) cannot read a bare RSDP, so it is checked here by hand
    d = dump(vessel, tmp_path / "acpi", 1)
    rsdp = (d / "rsdp.dat").read_bytes()
    assert len(rsdp) == 36
    assert rsdp[:8] == b"RSD PTR "
    assert sum(rsdp[:20]) % 256 == 0 and sum(rsdp) % 256 == 0
    sig, csum, oem, rev, rsdt, length, xsdt = struct.unpack_from("<8sB6sBIIQ", rsdp)
    assert rev == 2 and length == 36
    assert 0xE0000 <= xsdt < 0x100000
    xsdt_bytes = (d / "xsdt.dat").read_bytes()
    assert xsdt_bytes[:4] == b"XSDT" and sum(xsdt_bytes) % 256 == 0


def test_dump_acpi_usage(vessel, tmp_path):
    r = run([vessel, "vm", "dump-acpi"])
    assert r.returncode == 2 and "usage" in r.stderr
    r = run([vessel, "vm", "dump-acpi", "--cpus", "0", str(tmp_path)])
    assert r.returncode == 2 and "at least one vCPU" in r.stderr
