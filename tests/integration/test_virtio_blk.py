"""virtio-blk: the virtio-blk tiny guest (tests/guests/virtio-blk.c) against `--disk`.

The guest reads what the test wrote into the image, writes, flushes, discards and zeroes,
and prints each request's status; the test then checks the image file itself. Read-only
disks are checked from outside too (the open file's flags in /proc while the guest waits),
and the rate limiter by the time the guest's reads take.
"""
import os
import pathlib
import select
import signal
import stat
import subprocess
import time

import pytest

from conftest import run
from test_vm_guests import boot, expect, guest, value

# every test here boots a VM: tests/kvm.sh runs them where there is hardware KVM
pytestmark = pytest.mark.kvm

SECTOR = 512
HOST_TEXT = b"vessel blk test: host wrote this"
PATTERN = b"guest wrote this sector. "


def make_image(path, size=1 << 20):
    """An image with text at sector 0 and non-zero bytes where the guest discards (sectors
    16-23) and writes zeroes (24-31), so zeros there afterwards are the guest's doing."""
    data = bytearray(os.urandom(size))
    data[0:len(HOST_TEXT)] = HOST_TEXT
    data[len(HOST_TEXT)] = 0  # the guest prints the text up to here
    data[16 * SECTOR:32 * SECTOR] = b"\xa5" * (16 * SECTOR)
    pathlib.Path(path).write_bytes(data)
    return bytes(data)


def guest_sum(data):
    """The guest's BLK READ SUM: s = s * 31 + byte, modulo 2^32."""
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xFFFFFFFF
    return f"{s:08x}"


def pattern(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def check_rw_lines(lines, before):
    assert value(lines, "BLK CAPACITY") == str(len(before) // SECTOR)
    assert value(lines, "BLK FEATURES") == \
        "ro=0 flush=1 discard=1 write_zeroes=1 indirect=1 event_idx=1"
    assert value(lines, "BLK READ STATUS") == "0"
    assert value(lines, "BLK READ USED") == "4097"  # data and the status byte
    assert value(lines, "BLK READ") == HOST_TEXT.decode()
    assert value(lines, "BLK READ SUM") == guest_sum(before[:4096])
    for key in ("BLK WRITE STATUS", "BLK FLUSH STATUS", "BLK DISCARD STATUS",
                "BLK WRITE ZEROES STATUS", "BLK LAST SECTOR STATUS"):
        assert value(lines, key) == "0", key
    assert value(lines, "BLK READBACK") == "same"
    assert value(lines, "BLK INDIRECT") == "same"
    assert value(lines, "BLK PAST END STATUS") == "1"  # VIRTIO_BLK_S_IOERR
    assert value(lines, "BLK UNKNOWN TYPE STATUS") == "2"  # VIRTIO_BLK_S_UNSUPP
    assert value(lines, "BLK DEVICE STATUS") == "0x0f"  # DRIVER_OK, no NEEDS_RESET


def check_rw_file(after, before):
    assert after[8 * SECTOR:16 * SECTOR] == pattern(4096)
    assert after[16 * SECTOR:32 * SECTOR] == bytes(16 * SECTOR)  # discarded, zeroed
    written = bytes(i * 7 + 1 & 0xFF for i in range(1024))
    assert after[40 * SECTOR:42 * SECTOR] == written  # the indirect chain's write
    # nothing else changed
    assert after[:8 * SECTOR] == before[:8 * SECTOR]
    assert after[42 * SECTOR:] == before[42 * SECTOR:]
    assert after[32 * SECTOR:40 * SECTOR] == before[32 * SECTOR:40 * SECTOR]


def test_guest_reads_writes_flushes_discards_and_the_file_holds_it(vessel, tmp_path):
    img = tmp_path / "disk.img"
    before = make_image(img)
    rc, lines, err = boot(vessel, "virtio-blk", "--disk", f"{img},id=test-disk-1")
    expect(rc, lines, err)
    check_rw_lines(lines, before)
    assert value(lines, "BLK GET ID STATUS") == "0"
    assert value(lines, "BLK ID") == "test-disk-1"
    check_rw_file(img.read_bytes(), before)


def test_default_id_is_the_files_identity(vessel, tmp_path):
    img = tmp_path / "disk.img"
    make_image(img)
    rc, lines, err = boot(vessel, "virtio-blk", "--disk", str(img))
    expect(rc, lines, err)
    st = os.stat(img)
    assert value(lines, "BLK ID") == f"{st.st_dev:x}{st.st_rdev:x}{st.st_ino:x}"[:20]


def test_twenty_byte_id_fills_the_field(vessel, tmp_path):
    img = tmp_path / "disk.img"
    make_image(img)
    rc, lines, err = boot(vessel, "virtio-blk", "--disk", f"{img},id=abcdefghij0123456789")
    expect(rc, lines, err)
    assert value(lines, "BLK ID") == "abcdefghij0123456789"


def test_block_device(vessel, tmp_path):
    """The same on a loop device: the size comes from BLKGETSIZE64, discard and write-zeroes
    go to the block layer."""
    img = tmp_path / "loop.img"
    before = make_image(img, 2 << 20)
    r = run(["losetup", "--find", "--show", str(img)], timeout=30)
    assert r.returncode == 0, r.stderr
    dev = r.stdout.strip()
    try:
        assert stat.S_ISBLK(os.stat(dev).st_mode)
        rc, lines, err = boot(vessel, "virtio-blk", "--disk", f"{dev},id=loop")
        expect(rc, lines, err)
        check_rw_lines(lines, before)
    finally:
        run(["losetup", "-d", dev], timeout=30)
    check_rw_file(img.read_bytes(), before)


def test_direct_io(vessel, tmp_path):
    img = tmp_path / "disk.img"
    before = make_image(img)
    rc, lines, err = boot(vessel, "virtio-blk", "--disk", f"{img},direct")
    expect(rc, lines, err)
    check_rw_lines(lines, before)
    check_rw_file(img.read_bytes(), before)


def test_malformed_requests_break_only_the_device_until_reset(vessel, tmp_path):
    """Each malformed request sets DEVICE_NEEDS_RESET (0x40 in Status, no used entry), logs
    one line that says why, and after a reset the disk reads again; the VM goes on."""
    img = tmp_path / "disk.img"
    make_image(img)
    rc, lines, err = boot(vessel, "virtio-blk", "--cmdline", "blk.hostile", "--disk", str(img))
    expect(rc, lines, err)
    cases = {
        "READ INTO READ-ONLY BUFFER": "read request with 512 device-readable data bytes",
        "SHORT HEADER": "request header is 8 bytes, not 16",
        "WRITE FROM WRITABLE BUFFER": "write request with 512 device-writable data bytes",
        "NO STATUS": "request has no device-writable status byte",
    }
    for case, why in cases.items():
        assert value(lines, f"BLK HOSTILE {case}") == "0x4f", case
        assert f"virtio-blk@0xd0000000: {why}; the device needs a reset" in err, err
    assert len(err.strip().splitlines()) == len(cases), err
    assert value(lines, "BLK AFTER RESET READ STATUS") == "0"
    assert value(lines, "BLK AFTER RESET READ") == HOST_TEXT.decode()


def test_host_io_error_is_ioerr_and_the_vm_goes_on(vessel, tmp_path):
    """A write the host cannot store (ENOSPC on a full tmpfs) is answered IOERR; the
    device keeps working (reads, flush) and vessel logs the cause once."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    r = run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], timeout=30)
    assert r.returncode == 0, r.stderr
    try:
        img = mnt / "disk.img"
        with open(img, "wb") as f:
            f.truncate(1 << 20)  # sparse: every write needs a new page
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"x" * 4096) == 4096:
                pass
        except OSError:
            pass  # full: what the test wants
        finally:
            os.close(fd)
        rc, lines, err = boot(vessel, "virtio-blk", "--disk", str(img))
    finally:
        run(["umount", str(mnt)], timeout=30)
    expect(rc, lines, err)
    assert value(lines, "BLK READ STATUS") == "0"
    assert value(lines, "BLK WRITE STATUS") == "1"
    assert value(lines, "BLK FLUSH STATUS") == "0"
    assert value(lines, "BLK DEVICE STATUS") == "0x0f"
    logged = [line for line in err.splitlines() if "answered IOERR" in line]
    assert len(logged) == 1 and "No space left on device" in logged[0], err


class Waiting:
    """vessel running the guest with blk.wait: stopped at `BLK WAITING` until told."""

    def __init__(self, vessel, *args):
        self.p = subprocess.Popen(
            [vessel, "vm", "run", "--kernel", guest("virtio-blk"), "--cmdline", "blk.wait",
             *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        deadline = time.monotonic() + 60
        while b"BLK WAITING" not in self.out:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.p.stdout], [], [], max(left, 0))
            chunk = os.read(self.p.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                self.p.kill()
                _, err = self.p.communicate(timeout=30)
                pytest.fail(f"guest never waited:\n{self.out.decode()}\n{err.decode()}")
            self.out += chunk

    def lines(self):
        return [line.rstrip("\r") for line in self.out.decode().split("\n") if line]

    def finish(self):
        out, err = self.p.communicate(b"\n", timeout=60)
        self.out += out
        return self.p.returncode, self.lines(), err.decode()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate(timeout=30)


def open_flags(pid, path):
    """The open flags of pid's descriptors on path (from /proc/PID/fdinfo)."""
    flags = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != str(path):
                continue
            info = pathlib.Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except FileNotFoundError:
            continue
        flags += [int(line.split()[1], 8) for line in info.splitlines()
                  if line.startswith("flags:")]
    return flags


def test_read_only_disk_refuses_writes_and_is_opened_read_only(vessel, tmp_path):
    img = tmp_path / "ro.img"
    before = make_image(img)
    w = Waiting(vessel, "--disk", f"{img},ro")
    try:
        flags = open_flags(w.p.pid, img)
        assert flags, "vessel has no descriptor on the image"
        assert all(f & os.O_ACCMODE == os.O_RDONLY for f in flags), [oct(f) for f in flags]
        rc, lines, err = w.finish()
    finally:
        w.kill()
    expect(rc, lines, err)
    assert value(lines, "BLK FEATURES") == \
        "ro=1 flush=1 discard=0 write_zeroes=0 indirect=1 event_idx=1"
    assert value(lines, "BLK READ") == HOST_TEXT.decode()
    assert value(lines, "BLK WRITE STATUS") == "1"  # VIRTIO_BLK_S_IOERR
    assert value(lines, "BLK READBACK") == "differs"
    assert value(lines, "BLK DISCARD STATUS") == "not offered"
    assert value(lines, "BLK INDIRECT") == "differs"  # that write was refused too
    assert value(lines, "BLK DEVICE STATUS") == "0x0f"
    assert img.read_bytes() == before


def test_read_write_disk_is_opened_read_write(vessel, tmp_path):
    """The other side of the read-only check: the fdinfo test can tell the difference."""
    img = tmp_path / "rw.img"
    make_image(img)
    w = Waiting(vessel, "--disk", str(img))
    try:
        flags = open_flags(w.p.pid, img)
        assert flags and all(f & os.O_ACCMODE == os.O_RDWR for f in flags)
        rc, lines, err = w.finish()
    finally:
        w.kill()
    expect(rc, lines, err)


def test_flushed_write_survives_vessel_being_killed(vessel, tmp_path):
    """Once the guest saw its write and flush complete, the data is in the file even if
    vessel dies at once (SIGKILL, no clean-up)."""
    img = tmp_path / "disk.img"
    before = make_image(img)
    w = Waiting(vessel, "--disk", str(img))
    try:
        assert value(w.lines(), "BLK FLUSH STATUS") == "0"
        w.p.send_signal(signal.SIGKILL)
        w.p.wait(timeout=30)
    finally:
        w.kill()
    assert w.p.returncode == -signal.SIGKILL
    check_rw_file(img.read_bytes(), before)


@pytest.mark.parametrize("spec, message", [
    ("{d}/missing.img", "--disk {d}/missing.img: open `{d}/missing.img`: No such file or directory"),
    ("{d}/disk.img,bw=fast", "--disk {d}/disk.img,bw=fast: bw: not a rate"),
    ("{d}/disk.img,iops=-3", "--disk {d}/disk.img,iops=-3: iops: not a rate"),
    ("{d}/disk.img,bw=0", "--disk {d}/disk.img,bw=0: bw: must be above 0 (leave it out for no limit)"),
    ("{d}/disk.img,bw_burst=1M", "--disk {d}/disk.img,bw_burst=1M: bw_burst: needs bw="),
    ("{d}/disk.img,cache=none", "--disk {d}/disk.img,cache=none: `cache`: unknown option "
     "(ro, id=NAME, direct, bw=RATE, iops=N, bw_burst=SIZE, iops_burst=N)"),
    ("{d}/disk.img,id=abcdefghijklmnopqrstuvwxyz",
     "--disk {d}/disk.img,id=abcdefghijklmnopqrstuvwxyz: id: `abcdefghijklmnopqrstuvwxyz` is "
     "longer than 20 bytes"),
    ("{d}/disk.img,ro=1", "--disk {d}/disk.img,ro=1: ro: takes no value"),
    ("{d}", "--disk {d}: open `{d}`: Is a directory"),
    ("{d},ro", "--disk {d},ro: `{d}`: not a regular file or block device"),
    ("{d}/tiny.img", "--disk {d}/tiny.img: `{d}/tiny.img`: 100 bytes, smaller than one 512-byte sector"),
    (",ro", "--disk ,ro: needs a file or block device (PATH[,options])"),
])
def test_bad_disk_gives_one_clear_line(vessel, tmp_path, spec, message):
    make_image(tmp_path / "disk.img")
    (tmp_path / "tiny.img").write_bytes(b"x" * 100)
    d = str(tmp_path)
    r = run([vessel, "vm", "run", "--kernel", guest("virtio-blk"), "--disk", spec.format(d=d)],
            timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"vessel: {message.format(d=d)}"]


def timed_bench(cmd, timeout=120):
    """Runs a bench-mode guest; returns (exit status, lines, seconds from BENCH START to
    BENCH END as the lines arrived)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    buf, stamps = b"", {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{cmd} timed out:\n{buf.decode()}")
            ready, _, _ = select.select([p.stdout], [], [], left)
            chunk = os.read(p.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                break
            buf += chunk
            for key in (b"BENCH START", b"BENCH END"):
                if key in buf and key not in stamps:
                    stamps[key] = time.monotonic()
        err = p.stderr.read().decode()
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    lines = [line.rstrip("\r") for line in buf.decode().split("\n") if line]
    expect(rc, lines, err)
    return lines, stamps[b"BENCH END"] - stamps[b"BENCH START"]


def bench_cmd(vessel, img, disk_opts, cmdline):
    return [vessel, "vm", "run", "--kernel", guest("virtio-blk"), "--cmdline", cmdline,
            "--disk", f"{img}{disk_opts}"]


def test_bandwidth_limit_holds(vessel, tmp_path):
    """bw=2M: 8 MiB of reads. The bucket starts full (2 MiB), so the other 6 MiB take at
    least 3 s; without the limit the same reads take well under that."""
    img = tmp_path / "disk.img"
    make_image(img, 4 << 20)
    cmdline = "blk.bench=seqread blk.bs=256K blk.depth=2 blk.total=8M"
    lines, free = timed_bench(bench_cmd(vessel, img, "", cmdline))
    assert value(lines, "BENCH END") == f"ops=32 bytes={8 << 20} errors=0"
    lines, limited = timed_bench(bench_cmd(vessel, img, ",bw=2M", cmdline))
    assert value(lines, "BENCH END") == f"ops=32 bytes={8 << 20} errors=0"
    assert free < 1.5, f"unlimited run took {free:.2f} s"
    assert 2.7 <= limited <= 9, f"bw=2M: 8 MiB in {limited:.2f} s (expected ~3 s)"


def test_iops_limit_holds(vessel, tmp_path):
    """iops=100: 400 random 4 KiB reads; 100 come from the full bucket, 300 take >= 3 s."""
    img = tmp_path / "disk.img"
    make_image(img, 4 << 20)
    cmdline = "blk.bench=randread blk.bs=4K blk.depth=8 blk.total=1600K"
    lines, limited = timed_bench(bench_cmd(vessel, img, ",iops=100", cmdline))
    assert value(lines, "BENCH END") == f"ops=400 bytes={400 * 4096} errors=0"
    assert 2.7 <= limited <= 9, f"iops=100: 400 reads in {limited:.2f} s (expected ~3 s)"


def test_one_time_burst_comes_first(vessel, tmp_path):
    """bw=1M with bw_burst=6M: 8 MiB = 6 MiB burst + 1 MiB bucket + 1 MiB at 1 MiB/s."""
    img = tmp_path / "disk.img"
    make_image(img, 4 << 20)
    cmdline = "blk.bench=seqread blk.bs=256K blk.depth=2 blk.total=8M"
    lines, t = timed_bench(bench_cmd(vessel, img, ",bw=1M,bw_burst=6M", cmdline))
    assert value(lines, "BENCH END") == f"ops=32 bytes={8 << 20} errors=0"
    assert 0.8 <= t <= 4, f"8 MiB with a 6 MiB burst at 1 MiB/s took {t:.2f} s (expected ~1 s)"


def qemu_blk(img, cmdline="", serial="test-disk-1"):
    cmd = ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "host",
           "-m", "128", "-display", "none", "-nodefaults", "-no-reboot", "-serial", "stdio",
           "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit",
           "-kernel", guest("virtio-blk"), "-append", cmdline or "console=ttyS0",
           "-drive", f"file={img},if=none,id=d0,format=raw,cache=writeback,discard=unmap",
           "-device", f"virtio-blk-device,drive=d0,serial={serial}"]
    r = run(cmd, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, [line.rstrip("\r") for line in r.stdout.splitlines()], r.stderr


def test_same_guest_same_answers_under_qemu_microvm(vessel, tmp_path):
    """QEMU's virtio-blk answers the guest line for line as vessel does, and leaves the same
    file behind: the device follows the spec, not our own guest. (QEMU ignores discards
    unless told discard=unmap.)"""
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    before = make_image(a)
    b.write_bytes(before)
    rc, lines, err = boot(vessel, "virtio-blk", "--disk", f"{a},id=test-disk-1")
    expect(rc, lines, err)
    qrc, qlines, qerr = qemu_blk(b)
    # isa-debug-exit: status (0 << 1) | 1
    assert qrc == 1, f"qemu exit {qrc}\n" + "\n".join(qlines) + qerr
    assert qlines == lines
    assert a.read_bytes() == b.read_bytes()
