"""Boots the tiny PVH guests (tests/guests) with `vessel vm run` and checks what they report.

Each guest exercises one part of the VM contract, prints `KEY: value` lines on COM1 (which
vessel copies to its stdout byte for byte) and ends the machine in a known way: poweroff
(exit 0), reset (3) or triple fault (4). The guests are built by meson next to the binary:
<dir of $VESSEL>/tests/guests/<name>.elf.
"""
import datetime
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import run, vessel_path

# every test here boots a VM: tests/kvm.sh runs them where there is hardware KVM
pytestmark = pytest.mark.kvm

MiB = 1 << 20
GiB = 1 << 30
LOWMEM_END = 0x9FC00
HIMEM = 0x100000
MMIO_HOLE = 0xC0000000
FOUR_GIB = 1 << 32


def guest(name):
    path = pathlib.Path(vessel_path()).resolve().parent / "tests" / "guests" / f"{name}.elf"
    if not path.is_file():
        pytest.fail(f"guest {path} not built (ninja builds tests/guests with vessel)")
    return str(path)


def boot(vessel, name, *args, timeout=60, stdin_text=None, command=()):
    """Runs `vessel vm run --kernel <guest> args [-- command]`; returns (rc, lines, stderr)."""
    cmd = [vessel, "vm", "run", "--kernel", guest(name), *args]
    if command:
        cmd += ["--", *command]
    kw = {"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}
    r = run(cmd, timeout=timeout, **kw)
    lines = [line.rstrip("\r") for line in r.stdout.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return r.returncode, lines, r.stderr


def expect(rc, lines, stderr, status=0):
    """The exit status is the guest's way out; a FAIL line is its own verdict."""
    detail = "\n".join(lines) + "\n--- stderr:\n" + stderr
    assert rc == status, f"exit status {rc}, expected {status}\n{detail}"
    assert not [line for line in lines if line.startswith("FAIL:")], detail


def value(lines, key):
    """The value of the one `KEY: value` line (exactly one must exist)."""
    found = [line[len(key) + 2:] for line in lines if line.startswith(key + ": ")]
    assert len(found) == 1, f"{key!r} lines: {found}\n" + "\n".join(lines)
    return found[0]


# ---------------------------------------------------------------- command line, memory map

def test_cmdline_is_passed_verbatim_and_stdout_is_only_the_guest(vessel):
    rc, lines, err = boot(vessel, "cmdline-memmap", "--cmdline", "console=ttyS0 vessel.test=42 a  b")
    expect(rc, lines, err)
    assert value(lines, "CMDLINE") == "console=ttyS0 vessel.test=42 a  b"
    # nothing but the guest's own lines on stdout
    n = int(value(lines, "MEMMAP ENTRIES"))
    assert len(lines) == n + 3, lines
    assert lines[0].startswith("CMDLINE: ") and lines[-1].startswith("RAM BYTES: ")


def test_command_words_follow_a_double_dash_on_the_cmdline(vessel):
    rc, lines, err = boot(vessel, "cmdline-memmap", "--cmdline", "quiet",
                          command=["echo", "hello", "world"])
    expect(rc, lines, err)
    assert value(lines, "CMDLINE") == "quiet -- echo hello world"


def parse_memmap(lines):
    entries = []
    for line in lines:
        m = re.fullmatch(r"MEMMAP (\d+): addr=0x([0-9a-f]{16}) size=0x([0-9a-f]{16}) type=(\d+)", line)
        if m:
            assert int(m.group(1)) == len(entries), lines
            entries.append((int(m.group(2), 16), int(m.group(3), 16), int(m.group(4))))
    assert len(entries) == int(value(lines, "MEMMAP ENTRIES")), lines
    return entries


def merged(ranges):
    out = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def expected_ram(memory):
    """The contract's layout: low RAM, a reserved gap to 1 MiB, RAM up to the 3 GiB hole,
    the rest above 4 GiB."""
    ram = [(0, LOWMEM_END), (HIMEM, min(memory, MMIO_HOLE))]
    if memory > MMIO_HOLE:
        ram.append((FOUR_GIB, FOUR_GIB + memory - MMIO_HOLE))
    return ram


@pytest.mark.parametrize("memory,arg", [(128 * MiB, None), (512 * MiB, "512M"),
                                        (3 * GiB + 512 * MiB, "3584M"), (6 * GiB, "6G")])
def test_memmap_matches_memory(vessel, memory, arg):
    args = ["--memory", arg] if arg else []
    rc, lines, err = boot(vessel, "cmdline-memmap", *args)
    expect(rc, lines, err)
    entries = parse_memmap(lines)
    ram = merged((a, a + s) for a, s, t in entries if t == 1)
    assert ram == expected_ram(memory), "\n".join(lines)
    reserved = merged((a, a + s) for a, s, t in entries if t == 2)
    assert any(a <= LOWMEM_END and e >= HIMEM for a, e in reserved), \
        "0x9fc00-0x100000 must be reserved\n" + "\n".join(lines)
    assert int(value(lines, "RAM BYTES")) == sum(e - a for a, e in expected_ram(memory))


# ---------------------------------------------------------------- ACPI

@pytest.mark.parametrize("cpus", [1, 2, 3])
def test_acpi_tables(vessel, cpus):
    rc, lines, err = boot(vessel, "acpi", "--cpus", str(cpus))
    expect(rc, lines, err)
    text = "\n".join(lines)
    via_info, via_scan = value(lines, "RSDP START_INFO"), value(lines, "RSDP SCAN")
    assert via_info == via_scan, text
    assert 0xE0000 <= int(via_scan, 16) < 0x100000, text
    assert value(lines, "RSDP REVISION") == "2"
    assert re.fullmatch(r"XSDT at 0x[0-9a-f]{8} checksum ok", value(lines, "ROOT")), text
    tables = [line.split()[1] for line in lines if line.startswith("TABLE: ")]
    assert set(tables) >= {"FACP", "APIC", "DSDT"}, text
    assert all(line.endswith("checksum ok") for line in lines if line.startswith("TABLE")), text
    assert value(lines, "CHECKSUMS") == "ok"
    assert value(lines, "FADT HW_REDUCED") == "yes"
    assert value(lines, "FADT SLEEP_CONTROL") == "space=1 width=8 addr=0x600"
    assert value(lines, "DSDT S5 SLP_TYP") == "5"
    assert value(lines, "DSDT COM1") == "PNP0501 io=0x3f8 irq=4"
    assert value(lines, "MADT LAPIC ADDR") == "0xfee00000"
    assert value(lines, "MADT IOAPIC") == "id=0 addr=0xfec00000 gsi=0"
    assert value(lines, "MADT ISO") == "irq=0 gsi=2"
    assert value(lines, "MADT CPUS") == str(cpus)


# ---------------------------------------------------------------- vCPUs

@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_smp_every_ap_starts_through_init_sipi(vessel, cpus):
    rc, lines, err = boot(vessel, "smp", "--cpus", str(cpus))
    expect(rc, lines, err)
    assert value(lines, "MADT CPUS") == str(cpus)
    assert value(lines, "BSP APIC ID") == "0"
    aps = sorted(line for line in lines if re.fullmatch(r"AP \d+ up", line))
    assert aps == sorted(f"AP {i} up" for i in range(1, cpus)), lines
    assert value(lines, "CPUS UP") == str(cpus)
    assert lines[-1] == f"CPUS UP: {cpus}"


# ---------------------------------------------------------------- devices

def test_rtc_reads_host_utc(vessel):
    rc, lines, err = boot(vessel, "rtc")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    expect(rc, lines, err)
    assert int(value(lines, "RTC REGISTER B"), 16) & 0x04 == 0, lines  # BCD by default
    seen = datetime.datetime.strptime(value(lines, "RTC"), "%Y-%m-%d %H:%M:%S")
    assert abs((now - seen).total_seconds()) <= 10, f"guest {seen}, host {now}"


def test_serial_input_reaches_the_guest(vessel):
    # 13 bytes: fits a 16550A's receive FIFO even if the guest starts late
    rc, lines, err = boot(vessel, "serial-echo", stdin_text="hello vessel\n")
    expect(rc, lines, err)
    assert lines == ["ECHO READY", "ECHO: hello vessel"], lines


def test_i8042_reset_exits_3(vessel):
    rc, lines, err = boot(vessel, "reset")
    expect(rc, lines, err, status=3)
    assert lines == ["RESET: i8042 0xfe to port 0x64"], lines


def test_fadt_reset_register_exits_3(vessel):
    rc, lines, err = boot(vessel, "fadt-reset")
    expect(rc, lines, err, status=3)
    assert lines == ["RESET: FADT reset register space=1 addr=0x604 value=0x01"], lines


def test_triple_fault_exits_4(vessel):
    rc, lines, err = boot(vessel, "triple-fault")
    expect(rc, lines, err, status=4)
    assert lines == ["TRIPLE FAULT: empty IDT, then a bad segment selector"], lines


def test_demo_guest_reports_cpus_memory_and_boot_time(vessel):
    rc, lines, err = boot(vessel, "demo", "--cpus", "2", "--memory", "256M")
    expect(rc, lines, err)
    assert value(lines, "CPUS (from the ACPI MADT)") == "2"
    ram = 256 * MiB - (HIMEM - LOWMEM_END)
    assert value(lines, "MEMORY (RAM in the PVH memmap)") == f"{ram >> 20} MiB ({ram} bytes)"
    assert re.fullmatch(r"\d+ TSC ticks( = \d+\.\d{3} ms \(TSC \d+ kHz\)| \(TSC rate unknown.*)",
                        value(lines, "TIME SINCE ENTRY")), lines


# ---------------------------------------------------------------- portability

def qemu_microvm(name, *args, cmdline=None, stdin_text=None):
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.fail("qemu-system-x86_64 missing (apt-get install qemu-system-x86)")
    accel = ["-enable-kvm", "-cpu", "host"] if os.access("/dev/kvm", os.R_OK | os.W_OK) else ["-accel", "tcg"]
    cmd = [qemu, "-M", "microvm,rtc=on", *accel, "-m", "128", "-display", "none", "-nodefaults",
           "-no-reboot", "-serial", "stdio", "-kernel", guest(name), *args]
    if cmdline:
        cmd += ["-append", cmdline]
    kw = {"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}
    r = run(cmd, timeout=60, **kw)
    return r.returncode, [line.rstrip("\r") for line in r.stdout.splitlines()], r.stderr


def test_same_guests_boot_under_qemu_microvm():
    """The guests follow PVH and ACPI, not vessel: QEMU's microvm gives the same lines."""
    rc, lines, err = qemu_microvm("smp", "-smp", "2")
    expect(rc, lines, err)
    assert value(lines, "MADT CPUS") == "2"
    assert "AP 1 up" in lines
    assert value(lines, "CPUS UP") == "2"
    rc, lines, err = qemu_microvm("cmdline-memmap", cmdline="console=ttyS0 vessel.test=42")
    expect(rc, lines, err)
    assert value(lines, "CMDLINE") == "console=ttyS0 vessel.test=42"
    assert (0, LOWMEM_END) in merged((a, a + s) for a, s, t in parse_memmap(lines) if t == 1)
    rc, lines, err = qemu_microvm("acpi")
    expect(rc, lines, err)
    assert value(lines, "RSDP START_INFO") == value(lines, "RSDP SCAN")
    assert value(lines, "CHECKSUMS") == "ok"
    assert value(lines, "FADT HW_REDUCED") == "yes"
    assert value(lines, "DSDT S5 SLP_TYP") == "5"
    assert value(lines, "DSDT COM1") == "PNP0501 io=0x3f8 irq=4"
    assert value(lines, "MADT CPUS") == "1"
    rc, lines, err = qemu_microvm("serial-echo", stdin_text="hello vessel\n")
    expect(rc, lines, err)
    assert lines == ["ECHO READY", "ECHO: hello vessel"]
