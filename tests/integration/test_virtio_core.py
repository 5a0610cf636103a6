"""The virtio-mmio transport, split virtqueues and virtio-rng, seen from tiny guests
(tests/guests/virtio-rng.c, virtio-hostile.c, cmdline-memmap.c) and from the DSDT."""
import json
import re
import subprocess
import time

import pytest

from conftest import run
from test_vm_guests import boot, expect, guest, qemu_microvm, value

# every test here boots a VM: tests/kvm.sh runs them where there is hardware KVM
pytestmark = pytest.mark.kvm

RNG_WINDOW = "virtio_mmio.device=4K@0xd0000000:5"


def test_rng_returns_bytes_that_differ_run_to_run(vessel):
    seen = []
    for _ in range(2):
        rc, lines, err = boot(vessel, "virtio-rng", "--rng")
        expect(rc, lines, err)
        assert value(lines, "VIRTIO DEVICES") == "1"
        assert value(lines, "VIRTIO DEVICE") == "id=4 base=0xd0000000 irq=5"
        assert value(lines, "RNG FEATURES") == "version1=1 event_idx=1 indirect=1"
        assert value(lines, "RNG LEN") == "64"
        assert value(lines, "RNG INDIRECT") == "48"
        assert value(lines, "RNG BATCH") == "32 chains, 512 bytes"
        assert int(value(lines, "RNG ROUND TRIP TSC")) > 0  # 100 kick-to-used round trips
        assert value(lines, "RNG STATUS") == "0x0f"  # ACK|DRIVER|FEATURES_OK|DRIVER_OK
        assert "RNG DONE" in lines
        seen.append(value(lines, "RNG BYTES"))
        assert re.fullmatch(r"[0-9a-f]{32}", seen[-1])
    assert seen[0] != seen[1], seen


def test_virtio_words_join_the_command_line_before_init_args(vessel):
    rc, lines, err = boot(vessel, "cmdline-memmap", "--rng", "--cmdline", "console=ttyS0",
                          command=["init", "arg"])
    expect(rc, lines, err)
    assert value(lines, "CMDLINE") == f"console=ttyS0 {RNG_WINDOW} -- init arg"
    rc, lines, err = boot(vessel, "cmdline-memmap", "--rng", "--cmdline", "")
    expect(rc, lines, err)
    assert value(lines, "CMDLINE") == RNG_WINDOW


def test_no_virtio_cmdline_leaves_the_command_line_alone(vessel):
    rc, lines, err = boot(vessel, "cmdline-memmap", "--rng", "--no-virtio-cmdline",
                          "--cmdline", "console=ttyS0")
    expect(rc, lines, err)
    assert value(lines, "CMDLINE") == "console=ttyS0"
    # and a guest that finds devices only there finds none (FAIL, then a triple fault)
    rc, lines, err = boot(vessel, "virtio-rng", "--rng", "--no-virtio-cmdline")
    assert rc == 4, (rc, lines, err)
    assert value(lines, "VIRTIO DEVICES") == "0"
    assert "FAIL: no virtio-rng device on the command line" in lines


def test_config_file_boots_the_same_machine(vessel, tmp_path):
    """Firecracker's config file: the root drive becomes vda with root= on the boot args, the
    devices take their windows in the table's order."""
    (tmp_path / "data.img").write_bytes(bytes(1 << 20))
    (tmp_path / "root.img").write_bytes(bytes(1 << 20))
    config = {
        "boot-source": {"kernel_image_path": guest("cmdline-memmap"),
                        "boot_args": "console=ttyS0"},
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 64},
        "drives": [
            {"drive_id": "data", "path_on_host": str(tmp_path / "data.img"),
             "is_root_device": False, "is_read_only": True},
            {"drive_id": "rootfs", "path_on_host": str(tmp_path / "root.img"),
             "is_root_device": True, "is_read_only": False},
        ],
        "entropy": {},
    }
    f = tmp_path / "vm.json"
    f.write_text(json.dumps(config))
    r = run([vessel, "vm", "run", "--config-file", str(f)], timeout=60,
            stdin=subprocess.DEVNULL)
    lines = [line.rstrip("\r") for line in r.stdout.splitlines()]
    expect(r.returncode, lines, r.stderr)
    words = " ".join(f"virtio_mmio.device=4K@0x{0xd0000000 + i * 0x1000:x}:{5 + i}"
                     for i in range(3))
    assert value(lines, "CMDLINE") == f"console=ttyS0 root=/dev/vda rw {words}"
    assert int(value(lines, "RAM BYTES")) < 64 << 20

    config["mmds-config"] = {}
    f.write_text(json.dumps(config))
    r = run([vessel, "vm", "run", "--config-file", str(f)], timeout=60,
            stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"vessel: {f}: mmds-config: not supported by vessel yet"]


def test_no_device_no_virtio_words(vessel):
    rc, lines, err = boot(vessel, "cmdline-memmap", "--cmdline", "console=ttyS0")
    expect(rc, lines, err)
    assert value(lines, "CMDLINE") == "console=ttyS0"


def test_dsdt_declares_each_virtio_device(vessel, tmp_path):
    d = tmp_path / "acpi"
    r = run([vessel, "vm", "dump-acpi", "--rng", "--disk", "a.img", "--net", "tap=t0", str(d)])
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["iasl", "-d", "dsdt.dat"], capture_output=True, text=True, timeout=60,
                       cwd=d)
    assert r.returncode == 0, r.stdout + r.stderr
    dsl = (d / "dsdt.dsl").read_text()
    assert dsl.count('Name (_HID, "LNRO0005")') == 3, dsl
    bases = re.findall(r"Memory32Fixed \(ReadWrite,\s*0x([0-9A-F]+),\s*// Address Base\s*"
                       r"0x([0-9A-F]+),", dsl)
    assert [(int(b, 16), int(s, 16)) for b, s in bases] == \
        [(0xD0000000, 0x1000), (0xD0001000, 0x1000), (0xD0002000, 0x1000)], dsl
    irqs = re.findall(r"Interrupt \(ResourceConsumer,[^)]*\)\s*\{\s*0x([0-9A-F]+),", dsl)
    # the Generic Event Device's (VMGenID's notification, GSI 23) is declared before the
    # virtio devices
    assert [int(i, 16) for i in irqs] == [23, 5, 6, 7], dsl
    # without devices, none
    d2 = tmp_path / "plain"
    assert run([vessel, "vm", "dump-acpi", str(d2)]).returncode == 0
    assert b"LNRO0005" not in (d2 / "dsdt.dat").read_bytes()


def test_the_running_vm_gets_the_dsdt_dump_acpi_shows(vessel, tmp_path):
    """The window and IRQ the guest finds on its command line are the DSDT's."""
    rc, lines, err = boot(vessel, "virtio-rng", "--rng")
    expect(rc, lines, err)
    d = tmp_path / "acpi"
    assert run([vessel, "vm", "dump-acpi", "--rng", str(d)]).returncode == 0
    dsdt = (d / "dsdt.dat").read_bytes()
    assert dsdt.count(b"LNRO0005") == 1
    assert (0xD0000000).to_bytes(4, "little") in dsdt


HOSTILE_CASES = {
    "head-out-of-range": "head index 11 is past the queue size 8",
    "next-out-of-range": "next index 200 is past the descriptor table of 8",
    "address-outside-ram": "buffer at 0xe0000000 (+64 bytes) is outside guest RAM",
    "length-overflow": "buffer at 0xfffffffffffff000 (+8192 bytes) is outside guest RAM",
    "loop": "loops (more than 8 descriptors)",
    "over-long-chain": "longer than 256 descriptors",
    "readable-after-writable": "device-readable descriptor after a device-writable one",
    "readable-buffer-for-rng": "request has a device-readable buffer",
    "indirect-bad-length": "indirect table of 24 bytes",
    "nested-indirect": "indirect table inside an indirect table",
    "avail-index-jump": "driver index moved by 100 on a queue of 8",
    "ring-outside-ram": "descriptor ring at 0xe0000000 (+128 bytes): outside guest RAM",
}


def test_hostile_guest_breaks_the_device_not_the_vm(vessel):
    rc, lines, err = boot(vessel, "virtio-hostile", "--rng", timeout=120)
    expect(rc, lines, err)
    for case in HOSTILE_CASES:
        assert value(lines, f"HOSTILE {case}").startswith("NEEDS_RESET (status 0x4f isr 0x2)"), \
            "\n".join(lines)
    assert value(lines, "HOSTILE MISSED") == "0"
    assert value(lines, "HOSTILE RECOVERED") == "32", "the reset device serves again"
    warnings = [line for line in err.splitlines() if "the device needs a reset" in line]
    assert len(warnings) == len(HOSTILE_CASES), err
    for case, why in HOSTILE_CASES.items():
        hits = [w for w in warnings if why in w]
        assert len(hits) == 1, f"{case}: `{why}` logged {len(hits)} times\n{err}"
        assert hits[0].startswith("vessel: warning: virtio-rng@0xd0000000: "), hits[0]


def test_device_options_are_checked(vessel):
    r = run([vessel, "vm", "run", "--demo", "--disk", ""])
    assert r.returncode == 2
    assert "--disk: empty device spec" in r.stderr
    too_many = [a for _ in range(17) for a in ("--net", "tap=x")]
    r = run([vessel, "vm", "run", "--demo", *too_many])
    assert r.returncode == 2
    assert "more than 16 virtio devices" in r.stderr
    r = run([vessel, "vm", "run", "--help"])
    assert r.returncode == 0
    for opt in ("--disk SPEC", "--net SPEC", "--rng", "--no-virtio-cmdline"):
        assert opt in r.stdout


def test_rng_guest_gives_the_same_lines_under_qemu_microvm():
    """The guest library speaks virtio-mmio v2 as QEMU does, not just as vessel does. QEMU
    puts the virtio_mmio.device= words on the command line only with acpi=off, so the guest
    finds no FADT to power off with at the end: that one FAIL line is expected."""
    rc, lines, err = qemu_microvm("virtio-rng", "-M", "microvm,acpi=off,rtc=on", "-global",
                                  "virtio-mmio.force-legacy=false", "-device",
                                  "virtio-rng-device")
    detail = "\n".join(lines) + "\n--- stderr:\n" + err
    assert value(lines, "RNG FEATURES") == "version1=1 event_idx=1 indirect=1", detail
    assert value(lines, "RNG LEN") == "64"
    assert value(lines, "RNG INDIRECT") == "48"
    assert value(lines, "RNG BATCH") == "32 chains, 512 bytes"
    assert value(lines, "RNG STATUS") == "0x0f"
    assert "RNG DONE" in lines
    assert [line for line in lines if line.startswith("FAIL:")] == ["FAIL: no FADT"], detail


def timed_rate_guest(vessel, *rng):
    """Seconds between the guest's RNG START line and its RNG RATE line, as the host sees
    them on the console: the reads alone, not the VMM's start or the guest's boot."""
    proc = subprocess.Popen([vessel, "vm", "run", "--kernel", guest("virtio-rng-rate"), *rng],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines, start, end = [], None, None
    try:
        for line in proc.stdout:
            line = line.rstrip("\r\n")
            lines.append(line)
            if line == "RNG START":
                start = time.monotonic()
            elif line.startswith("RNG RATE:"):
                end = time.monotonic()
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    proc.stderr.close()
    expect(rc, lines, err)
    # 32 requests of 512 bytes, every one answered whole
    assert value(lines, "RNG RATE") == "32 requests, 16384 bytes, 0 short"
    assert value(lines, "RNG STATUS") == "0x0f"
    assert start is not None and end is not None, lines
    return end - start


def test_rng_rate_limit_slows_the_guest_to_the_rate(vessel):
    """--rng bw=4K: the bucket starts full (4 KiB), the other 12 KiB come at 4 KiB/s, so
    the reads take at least 3 s; ops=8 likewise (8 requests at once, 24 at 8/s). A slow
    host only makes the runs longer: the bounds are the limiter's own minimum (less a
    margin) and a loose ratio to the unlimited run, never an absolute ceiling."""
    free = timed_rate_guest(vessel, "--rng")
    bw = timed_rate_guest(vessel, "--rng", "bw=4K")
    ops = timed_rate_guest(vessel, "--rng=ops=8")
    print(f"virtio-rng 16 KiB: unlimited {free:.2f} s, bw=4K {bw:.2f} s, ops=8 {ops:.2f} s")
    assert bw >= 2.5 and ops >= 2.5, (free, bw, ops)
    assert bw > 3 * free and ops > 3 * free, (free, bw, ops)
    # no ceiling here: a lost wake-up fails the guest's own wait for a request (~20 s)
