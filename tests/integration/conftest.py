"""Shared fixtures for the integration tests: they run the real vessel binary."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def vessel_path():
    return os.environ.get("VESSEL", str(ROOT / "build" / "vessel"))


@pytest.fixture(scope="session")
def vessel():
    path = vessel_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"vessel binary not found at {path} (run make, or set VESSEL)")
    return path


def hardware_kvm():
    """A hardware-assisted /dev/kvm (VT-x or AMD-V): the only kind a KVM test trusts."""
    return ((os.path.isdir("/sys/module/kvm_intel") or os.path.isdir("/sys/module/kvm_amd"))
            and os.access("/dev/kvm", os.R_OK | os.W_OK))


@pytest.fixture(autouse=True)
def _kvm_where_marked(request):
    """A `kvm` test on a host without hardware KVM fails at once, saying where it runs,
    instead of failing somewhere inside with a confusing error."""
    if request.node.get_closest_marker("kvm") and not hardware_kvm():
        pytest.fail("this test needs a hardware-assisted /dev/kvm (kvm_intel or kvm_amd): "
                    "run it through tests/kvm.sh (make test), which uses the emulated KVM "
                    "host, tests/kvmhost/run, where this machine has none", pytrace=False)


def kvm_trace(lines=40):
    """Inside the emulated KVM host: the end of KVM's trace of triple faults (exit reason
    shutdown, with the guest's RIP) and injected exceptions (tests/kvmhost/init). Elsewhere,
    or when tracing is off, a line saying so."""
    try:
        with open("/sys/kernel/tracing/trace") as f:
            records = [line.rstrip() for line in f if not line.startswith("#")]
    except OSError as e:
        return f"(no KVM trace: {e})"
    return "--- KVM trace (last %d records):\n%s" % (lines, "\n".join(records[-lines:]))


def run(cmd, timeout=60, **kw):
    """Runs a command, never hangs the suite: a timeout fails the test."""
    if "stdout" not in kw and "stderr" not in kw:
        kw.setdefault("capture_output", True)
    kw.pop("capture_output", None) if kw.get("capture_output") is False else None
    return subprocess.run(cmd, text=True, timeout=timeout, **kw)


OOM_FLOOR_PROBE = """
import os, sys
want = int(sys.argv[1])
fd = os.open("/proc/self/oom_score_adj", os.O_RDWR)
value = int(os.pread(fd, 16, 0))
if want >= value:
    value = want
while value > want:
    try:
        os.pwrite(fd, str(value - 1).encode(), 0)
    except PermissionError:
        break
    value -= 1
print(value)
"""


def oom_score_floor(want):
    """The oom_score_adj a process started by this one ends up with when it asks for want:
    want itself, or, where lowering needs a CAP_SYS_RESOURCE the host does not give us (the
    kernel says EACCES), the lowest value the kernel accepts. Found by stepping down one at
    a time, the plain way, to check vessel's bisection against."""
    r = run(["/usr/bin/python3", "-c", OOM_FLOOR_PROBE, str(want)], timeout=30)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


# ---------------------------------------------------------------- containers


def traversable(path):
    """A container in a user namespace runs as an unmapped host uid: its rootfs and
    bundle must be reachable by others, as with runc."""
    p = pathlib.Path(path)
    for d in [p, *p.parents]:
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o011)


@pytest.fixture(scope="session")
def base_bundle(tmp_path_factory, vessel):
    """A busybox-static bundle made by scripts/mkbundle.sh, shared read-only. Not under
    pytest's own temporary root: any pytest that starts meanwhile on this machine resets
    that root to mode 0700, and containers in a user namespace (unmapped host uids) then
    lose the path to their rootfs."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="vessel-base-", dir="/tmp"))
    traversable(d)
    r = run([str(ROOT / "scripts" / "mkbundle.sh"), str(d)], timeout=120,
            env={**os.environ, "VESSEL": vessel})
    assert r.returncode == 0, r.stderr
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Bundle:
    """One container's bundle: the shared rootfs and a config.json to edit."""

    def __init__(self, vessel, base, path, state_root):
        self.vessel = vessel
        self.path = path
        self.root = state_root
        self.config = json.loads((base / "config.json").read_text())
        self.config["root"]["path"] = str(base / "rootfs")
        self.config["process"]["terminal"] = False
        self.ids = []

    def write(self):
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))

    def args(self, *argv):
        self.config["process"]["args"] = list(argv)
        return self

    def sh(self, script):
        return self.args("/bin/sh", "-c", script)

    def cmd(self, *argv, timeout=60, **kw):
        return run([self.vessel, "--root", str(self.root), *argv], timeout=timeout, **kw)

    def new_id(self):
        cid = "t" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        return cid

    def run(self, *extra, timeout=60, **kw):
        self.write()
        return self.cmd("run", "--bundle", str(self.path), *extra, self.new_id(),
                        timeout=timeout, **kw)

    def create(self, *extra, timeout=60):
        """create leaves the container holding its stdio: files, not pipes, or the
        caller would wait for the container to end."""
        self.write()
        cid = self.new_id()
        out, err = self.path / f"{cid}.out", self.path / f"{cid}.err"
        with open(out, "w") as o, open(err, "w") as e:
            p = subprocess.run([self.vessel, "--root", str(self.root), "create", "--bundle",
                                str(self.path), *extra, cid], stdin=subprocess.DEVNULL,
                               stdout=o, stderr=e, timeout=timeout)
        return cid, subprocess.CompletedProcess(p.args, p.returncode, out.read_text(),
                                                err.read_text())

    def cleanup(self):
        for cid in self.ids:
            self.cmd("delete", "--force", cid, timeout=30)


@pytest.fixture
def bundle(vessel, base_bundle, tmp_path):
    traversable(tmp_path)
    b = Bundle(vessel, base_bundle, tmp_path, tmp_path / "state")
    yield b
    b.cleanup()


def make_hook_dir(bundle, script):
    """A directory of the bundle holding hook.sh (`script`), where hooks may write; bound at
    the same path in the container, since startContainer hooks run inside it."""
    d = bundle.path / "hooks"
    d.mkdir()
    os.chmod(d, 0o777)
    (d / "hook.sh").write_text(script)
    os.chmod(d / "hook.sh", 0o755)
    bundle.config["mounts"].append({"destination": str(d), "type": "bind",
                                    "source": str(d), "options": ["rbind", "rw"]})
    return d
