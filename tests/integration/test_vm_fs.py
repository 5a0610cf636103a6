"""virtio-fs: vessel as a vhost-user front-end for Debian's virtiofsd (QEMU 7.2's C
back-end, /usr/lib/qemu/virtiofsd), with the default guest (Debian's kernel, whose virtiofs
and fuse modules images/build.sh puts in the initramfs).

One boot serves the share's tests (Linux in the emulated KVM host takes tens of seconds to
reach /init): virtiofsd serves a temporary directory holding a short file and 2 MiB of
random bytes; the guest mounts it by its tag, reads both, writes a file and a copy of the
big one, lists the directory and unmounts; each test asserts one behaviour from what the
guest printed and what the host finds in the directory afterwards.

The error tests need no guest. A bad spec is refused before anything is opened, on any
host. A socket nobody serves is found when the device is made, after the VM is created on
/dev/kvm: those are marked kvm, since some hosts have no /dev/kvm at all (tests/kvm.sh runs
them in the emulated KVM host there).
"""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import run
from test_linux import QUIET, images_dir, once_more_on_triple_fault, sh, vm_run
from test_vm_api import Api, spec  # noqa: F401 (spec is a fixture)

VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
MiB = 1 << 20
BIG = 2 * MiB


def start_virtiofsd(sock, share, log):
    """virtiofsd serving share on sock, once its socket exists (it listens before it
    accepts; one front-end, then it exits when that one goes)."""
    if not os.access(VIRTIOFSD, os.X_OK):
        pytest.fail(f"{VIRTIOFSD} missing (Debian's qemu-system-common ships it)")
    p = subprocess.Popen([VIRTIOFSD, f"--socket-path={sock}", "-o", f"source={share}",
                          "-o", "cache=none"], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        if os.path.exists(sock):
            return p
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.kill()
    p.wait()
    pytest.fail(f"virtiofsd did not listen on {sock}: {log.name}:\n"
                f"{open(log.name).read()}")


def stop(p):
    """virtiofsd exits when vessel closes the connection; one still there is killed (and the
    test says so through the fixture's record)."""
    try:
        return p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return None


@pytest.fixture(scope="module")
def share_boot(vessel, tmp_path_factory):
    return once_more_on_triple_fault(lambda: boot_share(vessel, tmp_path_factory.mktemp("fs")))


def boot_share(vessel, d):
    share = d / "share"
    share.mkdir()
    token = os.urandom(8).hex()
    (share / "hello").write_text(f"hello from the host {token}\n")
    big = os.urandom(BIG)
    (share / "big.bin").write_bytes(big)
    sock = d / "virtiofsd.sock"
    with open(d / "virtiofsd.log", "w") as log:
        fsd = start_virtiofsd(str(sock), str(share), log)
        try:
            script = sh(
                "mkdir -p /mnt",
                "mount -t virtiofs share /mnt; echo T:MOUNT $?",
                "echo T:HELLO $(cat /mnt/hello)",
                "echo T:BIG $(sha256sum </mnt/big.bin)",
                f"echo written by the guest {token} >/mnt/out; echo T:WRITE $?",
                "cp /mnt/big.bin /mnt/copy.bin; echo T:COPY $?",
                "echo T:LS $(ls /mnt)",
                "umount /mnt; echo T:UMOUNT $?",
                # the driver let go and taken again: a device reset (vessel stops the rings
                # with GET_VRING_BASE), then a second activation of the same back-end
                "d=$(basename /sys/bus/virtio/drivers/virtiofs/virtio*)",
                "echo $d >/sys/bus/virtio/drivers/virtiofs/unbind; echo T:UNBIND $?",
                "echo $d >/sys/bus/virtio/drivers/virtiofs/bind; echo T:BIND $?",
                "mount -t virtiofs share /mnt; echo T:REMOUNT $?",
                "echo T:AGAIN $(cat /mnt/out)",
                "umount /mnt",
                "grep -c virtiofs /proc/filesystems | sed 's/^/T:FSTYPE /'",
                # for a failure's report: the devices the guest found, what its drivers said
                "echo T:DEVICES $(cat /sys/bus/virtio/devices/*/device)",
                "dmesg | grep -iE 'virtio|fuse' | sed 's/^/T:DMESG /'")
            boot = vm_run(vessel, ["--cpus", "1", "--memory", "256M", "--cmdline", QUIET,
                                   "--fs", f"tag=share,socket={sock}"], script, debug=True)
        finally:
            boot_fsd_rc = stop(fsd)
    boot.share, boot.token, boot.big = share, token, big
    boot.fsd_rc, boot.fsd_log = boot_fsd_rc, (d / "virtiofsd.log").read_text()
    return boot


def explain(boot):
    return f"{boot}\n--- virtiofsd (exit {boot.fsd_rc}):\n{boot.fsd_log[-3000:]}"


@pytest.mark.kvm
def test_guest_mounts_the_share(share_boot):
    b = share_boot
    assert b.rc == 0 and b.guest_status() == 0, explain(b)
    assert b.value("MOUNT") == "0", explain(b)


@pytest.mark.kvm
def test_guest_reads_the_hosts_files(share_boot):
    b = share_boot
    assert b.value("HELLO") == f"hello from the host {b.token}", explain(b)
    assert b.value("BIG").split()[0] == hashlib.sha256(b.big).hexdigest(), explain(b)


@pytest.mark.kvm
def test_host_sees_the_guests_writes(share_boot):
    b = share_boot
    assert b.value("WRITE") == "0" and b.value("COPY") == "0", explain(b)
    assert (b.share / "out").read_text() == f"written by the guest {b.token}\n", explain(b)
    assert (b.share / "copy.bin").read_bytes() == b.big, explain(b)
    assert b.value("LS").split() == ["big.bin", "copy.bin", "hello", "out"], explain(b)
    assert b.value("UMOUNT") == "0", explain(b)


@pytest.mark.kvm
def test_a_reset_device_starts_again(share_boot):
    b = share_boot
    assert b.value("UNBIND") == "0" and b.value("BIND") == "0", explain(b)
    assert b.value("REMOUNT") == "0", explain(b)
    assert b.value("AGAIN") == f"written by the guest {b.token}", explain(b)
    # two activations (boot, bind), and every reset of a running device (unbind, the
    # guest's shutdown) stopped both rings: the back-end answered each GET_VRING_BASE
    assert "stopping queue" not in b.err, explain(b)
    assert b.err.count("fs `share`: started") == 2, explain(b)
    resets = b.err.count("reset (was active)")
    assert resets >= 1 and b.err.count("stopped at") == 2 * resets, explain(b)


@pytest.mark.kvm
def test_virtiofsd_ends_with_the_vm(share_boot):
    # vessel closed the connection at exit: virtiofsd left on its own, not killed by stop()
    assert share_boot.fsd_rc == 0, explain(share_boot)


def image_env():
    return dict(os.environ, VESSEL_IMAGES=str(images_dir()))


def snapshot_scenario(vessel, spec, d):  # noqa: F811
    """`vm api --config-file` with the config file's "fs" array: the guest mounts the share
    and reads it, then the paused VM is asked for a snapshot."""
    share = d / "share"
    share.mkdir()
    (share / "hello").write_text("from the host\n")
    sock = d / "fs.sock"
    images = images_dir()
    script = "mkdir -p /mnt; mount -t virtiofs share /mnt; echo T:READY $(cat /mnt/hello); sleep 600"
    cfg = {"boot-source": {"kernel_image_path": str(images / "vmlinuz"),
                           "initrd_path": str(images / "initrd.img"),
                           "boot_args": f'{QUIET} -- sh -c "{script}"'},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 192},
           "fs": [{"tag": "share", "socket": str(sock)}]}
    (d / "vm.json").write_text(json.dumps(cfg))
    out = d / "console.txt"
    seen = {}
    with open(d / "virtiofsd.log", "w") as log:
        fsd = start_virtiofsd(str(sock), str(share), log)
        try:
            with open(out, "w") as stdout:
                a = Api(vessel, spec, ["--config-file", str(d / "vm.json")], stdout=stdout)
            try:
                deadline = time.monotonic() + 400
                while ("T:READY" not in out.read_text() and time.monotonic() < deadline
                       and a.proc.poll() is None):
                    time.sleep(0.5)
                seen["ready"] = [line for line in out.read_text().splitlines()
                                 if line.startswith("T:READY")]
                a.ok("PATCH", "/vm", {"state": "Paused"})
                seen["fault"] = a.fault("PUT", "/snapshot/create", {
                    "snapshot_type": "Full", "snapshot_path": str(d / "state"),
                    "mem_file_path": str(d / "mem")})
                seen["files"] = [(d / "state").exists(), (d / "mem").exists()]
                seen["after"] = a.ok("GET", "/")["state"]
            finally:
                seen["rc"], seen["err"] = a.stop(signal.SIGTERM)
        finally:
            seen["fsd_rc"] = stop(fsd)
    seen["console"] = out.read_text()[-3000:]
    return seen


@pytest.mark.kvm
def test_a_vm_with_a_share_is_not_snapshotted(vessel, spec, tmp_path):  # noqa: F811
    s = snapshot_scenario(vessel, spec, tmp_path)
    assert s["ready"] == ["T:READY from the host"], s
    assert s["fault"] == ("PUT /snapshot/create: the VM has a fs device, which cannot be snapshotted yet (it has "
                          "no save/restore)"), s
    assert s["files"] == [False, False] and s["after"] == "Paused", s
    assert s["rc"] == 128 + signal.SIGTERM and s["fsd_rc"] == 0, s


@pytest.mark.kvm
def test_socket_nobody_serves(vessel, tmp_path):
    sock = tmp_path / "nobody.sock"
    r = run([vessel, "vm", "run", "--fs", f"tag=share,socket={sock}"], env=image_env())
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip().splitlines() == [
        f"vessel: --fs tag=share,socket={sock}: cannot connect to {sock}: No such file or "
        f"directory (is virtiofsd running? {VIRTIOFSD})"], r.stderr


@pytest.mark.kvm
def test_a_socket_that_is_not_one(vessel, tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    r = run([vessel, "vm", "run", "--fs", f"tag=share,socket={f}"], env=image_env())
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert f"cannot connect to {f}: Connection refused (is virtiofsd running?" in r.stderr, \
        r.stderr


@pytest.mark.parametrize("spec,words", [
    ("socket=/x.sock", "tag: missing"),
    ("tag=share", "socket: missing"),
    ("tag=" + "t" * 37 + ",socket=/x.sock", "tag: `" + "t" * 37 + "` is 37 bytes, longer "
     "than virtio-fs's 36"),
    ("tag=,socket=/x.sock", "tag: an empty tag"),
    ("tag=a b,socket=/x.sock", "tag: `a b`: a space"),
    ("tag=share,socket=/" + "s" * 107, "socket: `/" + "s" * 107 + "` is longer than a Unix "
     "socket path"),
    ("tag=share,socket=/x,tag=again", "tag: given twice"),
    ("tag=share,socket=/x,cache=none", "cache: unknown option (tag=, socket=)"),
])
def test_bad_spec(vessel, spec, words):
    r = run([vessel, "vm", "run", "--demo", "--fs", spec])
    # a bad device spec is refused before anything is opened, with vessel's status for bad
    # input (1), as --disk, --vsock and --balloon are
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip() == f"vessel: --fs {spec}: {words}" or \
        (r.stderr.startswith(f"vessel: --fs {spec}: {words}") and len(r.stderr.splitlines()) == 1), \
        r.stderr


@pytest.mark.kvm
def test_config_file(vessel, tmp_path):
    """The config file's "fs" array reaches the same device (made before the guest boots,
    so no guest runs here); its errors name the member."""
    sock = tmp_path / "nobody.sock"
    cfg = tmp_path / "vm.json"
    kernel = images_dir() / "vmlinuz"
    cfg.write_text(f'{{"boot-source": {{"kernel_image_path": "{kernel}"}}, '
                   f'"fs": [{{"tag": "share", "socket": "{sock}"}}]}}')
    r = run([vessel, "vm", "run", "--config-file", str(cfg)])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert f"fs[0]: cannot connect to {sock}: No such file or directory (is virtiofsd " \
        "running?" in r.stderr, r.stderr
    cfg.write_text(f'{{"boot-source": {{"kernel_image_path": "{kernel}"}}, '
                   '"fs": [{"tag": "share"}]}')
    r = run([vessel, "vm", "run", "--config-file", str(cfg)])
    assert r.returncode == 1 and "fs[0]: socket" in r.stderr, (r.returncode, r.stderr)
    cfg.write_text(f'{{"boot-source": {{"kernel_image_path": "{kernel}"}}, '
                   f'"fs": [{{"tag": "{"x" * 37}", "socket": "{sock}"}}]}}')
    r = run([vessel, "vm", "run", "--config-file", str(cfg)])
    assert r.returncode == 1 and "fs[0]: tag: `" in r.stderr, (r.returncode, r.stderr)


@pytest.mark.kvm
def test_two_shares_of_one_tag_are_refused(vessel, tmp_path):
    """The first share connects (virtiofsd serves it, no guest needed: the device is made
    before boot); the second of the same tag is refused naming it."""
    share = tmp_path / "share"
    share.mkdir()
    sock = tmp_path / "fs.sock"
    with open(tmp_path / "virtiofsd.log", "w") as log:
        fsd = start_virtiofsd(str(sock), str(share), log)
        try:
            r = run([vessel, "vm", "run", "--fs", f"tag=share,socket={sock}",
                     "--fs", f"tag=share,socket={sock}"], env=image_env())
        finally:
            fsd_rc = stop(fsd)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip() == (f"vessel: --fs tag=share,socket={sock}: tag `share`: another "
                                "--fs has it"), r.stderr
    assert fsd_rc == 0, (tmp_path / "virtiofsd.log").read_text()


def test_merge_refused(vessel, tmp_path):
    sock = tmp_path / "nobody.sock"
    r = run([vessel, "vm", "run", "--demo", "--merge", "--fs", f"tag=share,socket={sock}"],
            check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "--merge: KSM merges only private memory, and --fs tag=share" in r.stderr, r.stderr
