"""`vessel jail` (Firecracker's jailer) and the VMM's per-thread seccomp filters.

The jail's properties are checked from outside on a jailed process that stays up: a tiny
static probe built here (it prints its ids and sleeps), since a jail holds no shared
libraries. The jailed VMM itself is the static release build (`make vessel`): it runs the
built-in demo guest where /dev/kvm runs it, and boots real Linux in the test marked kvm
(tests/kvm.sh runs that one in the emulated KVM host where this machine has no hardware
KVM). docs/jail.md."""
import os
import pathlib
import re
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import ROOT, run, vessel_path

UID, GID = 12345, 23456
PROBE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	printf("ready uid=%d gid=%d\n", (int)getuid(), (int)getgid());
	fflush(stdout);
	sleep(argc > 1 ? atoi(argv[1]) : 30);
	return 0;
}
"""


def elf_is_static(path):
    """No PT_INTERP: the binary runs in a root without a dynamic loader."""
    r = run(["readelf", "-lW", str(path)])
    return r.returncode == 0 and "INTERP" not in r.stdout


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(PROBE_C)
    r = run(["cc", "-static", "-O2", "-o", str(d / "probe"), str(d / "probe.c")])
    assert r.returncode == 0, "cannot build the static probe: " + r.stderr
    return d / "probe"


def static_vessel():
    """The release build is static (make vessel); a sanitizer build is not."""
    for c in (os.environ.get("VESSEL_STATIC"), vessel_path(), ROOT / "build" / "vessel"):
        if c and os.access(c, os.X_OK) and elf_is_static(c):
            return pathlib.Path(c)
    return None


def demo_runs(vessel):
    """Whether this host's /dev/kvm runs the built-in demo guest at all."""
    r = run([vessel, "vm", "run", "--demo", "--no-seccomp"], stdin=subprocess.DEVNULL,
            timeout=60)
    return r.returncode == 0


def v1_hierarchy(ctrl):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup" and ctrl in fields[sep + 3].split(","):
                return fields[4]
    return None


def v2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return fields[4]
    return None


def limits_for_host():
    """--cgroup-version and the files that set 64 MiB of memory and 16 pids on the hierarchy
    this host has for them."""
    if v1_hierarchy("memory") and v1_hierarchy("pids"):
        return "1", {"memory.limit_in_bytes": str(64 << 20), "pids.max": "16"}, {
            "memory.limit_in_bytes": v1_hierarchy("memory"), "pids.max": v1_hierarchy("pids")}
    v2 = v2_mount()
    ctrls = pathlib.Path(v2, "cgroup.controllers").read_text().split()
    assert "memory" in ctrls and "pids" in ctrls, "this host has no memory and pids controller"
    return "2", {"memory.max": str(64 << 20), "pids.max": "16"}, {"memory.max": v2, "pids.max": v2}


def jail(vessel, *args, **kw):
    return run([vessel, "jail", *args], **kw)


def snapshot_host(base):
    """What a failed jail must leave as it was: the files under base, the mount table, the
    cgroup directories named after the probe."""
    files = sorted(str(p) for p in pathlib.Path(base).rglob("*"))
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f)
    cgroups = sorted(str(p) for p in pathlib.Path("/sys/fs/cgroup").glob("**/probe*"))
    return files, mounts, cgroups


def cleanup_cgroups(name):
    for d in sorted(pathlib.Path("/sys/fs/cgroup").glob(f"**/{name}"), key=lambda p: -len(p.parts)):
        for sub in sorted(d.rglob("*"), key=lambda p: -len(p.parts)):
            if sub.is_dir():
                sub.rmdir()
        d.rmdir()


@pytest.fixture
def netns():
    name = "vsjail" + uuid.uuid4().hex[:8]
    r = run(["ip", "netns", "add", name])
    assert r.returncode == 0, r.stderr
    yield pathlib.Path("/run/netns") / name
    run(["ip", "netns", "del", name])


def wait_line(proc, timeout=20):
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    assert time.monotonic() < deadline
    return line


def test_jailed_process_from_outside(vessel, probe, tmp_path, netns):
    """Root, ids, cgroup and limits, namespaces, fds, environment and rlimits of a jailed
    process, each read from /proc outside it."""
    jid = "t-" + uuid.uuid4().hex[:12]
    version, files, where = limits_for_host()
    args = ["--id", jid, "--exec-file", str(probe), "--uid", str(UID), "--gid", str(GID),
            "--chroot-base-dir", str(tmp_path), "--netns", str(netns),
            "--cgroup-version", version, "--resource-limit", "no-file=123",
            "--resource-limit", "fsize=4096"]
    for f, v in files.items():
        args += ["--cgroup", f"{f}={v}"]
    # an fd the jailer inherits must not reach the VMM; nor may the environment
    r_fd, w_fd = os.pipe()
    p = subprocess.Popen([vessel, "jail", *args, "--", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, pass_fds=(r_fd,),
                         env={**os.environ, "JAIL_SECRET": "leak"})
    os.close(r_fd)
    os.close(w_fd)
    try:
        line = wait_line(p)
        assert line.strip() == f"ready uid={UID} gid={GID}", line + p.stderr.read()
        pid = p.pid  # the jailer execs the probe in place
        proc = pathlib.Path(f"/proc/{pid}")
        # its root is the jail: the binary and /dev with only the three nodes
        assert sorted(os.listdir(proc / "root")) == ["dev", "probe"]
        devs = sorted(str(q.relative_to(proc / "root")) for q in (proc / "root" / "dev").rglob("*"))
        want = [d for d in ("dev/kvm", "dev/net/tun", "dev/userfaultfd") if os.path.exists("/" + d)]
        assert [d for d in devs if d != "dev/net"] == sorted(want)
        for d in want:
            host, jailed = os.stat("/" + d), os.stat(proc / "root" / d)
            assert jailed.st_rdev == host.st_rdev
            assert (jailed.st_uid, jailed.st_gid) == (UID, GID)
        root_dir = tmp_path / "probe" / jid / "root"
        assert root_dir.is_dir()
        status = (proc / "status").read_text()
        assert re.search(rf"^Uid:\s+{UID}\s+{UID}\s+{UID}\s+{UID}$", status, re.M), status
        assert re.search(rf"^Gid:\s+{GID}\s+{GID}\s+{GID}\s+{GID}$", status, re.M), status
        assert re.search(r"^Groups:\s*$", status, re.M), status
        assert re.search(r"^CapEff:\s+0+$", status, re.M), status
        # the cgroup <exec-name>/<id> with the limits
        cg = (proc / "cgroup").read_text()
        assert f"/probe/{jid}" in cg, cg
        for f, v in files.items():
            assert pathlib.Path(where[f], "probe", jid, f).read_text().strip() == v
            procs = pathlib.Path(where[f], "probe", jid, "cgroup.procs").read_text().split()
            assert str(pid) in procs
        # namespaces: its own mount namespace, the given network namespace
        assert os.readlink(proc / "ns" / "mnt") != os.readlink("/proc/self/ns/mnt")
        assert os.stat(proc / "ns" / "net").st_ino == os.stat(netns).st_ino
        assert os.readlink(proc / "ns" / "net") != os.readlink("/proc/self/ns/net")
        assert sorted(os.listdir(proc / "fd")) == ["0", "1", "2"]
        assert (proc / "environ").read_bytes() == b""
        lim = (proc / "limits").read_text()
        assert re.search(r"^Max open files\s+123\s+123", lim, re.M), lim
        assert re.search(r"^Max file size\s+4096\s+4096", lim, re.M), lim
        # the host's own mount table did not change: the pivot happened in the jail's
        with open("/proc/self/mountinfo") as f:
            assert str(root_dir) not in f.read()
    finally:
        p.kill()
        p.wait()
        cleanup_cgroups("probe")


def test_new_pid_ns_and_daemonize(vessel, probe, tmp_path):
    jid = "d-" + uuid.uuid4().hex[:12]
    r = jail(vessel, "--id", jid, "--exec-file", str(probe), "--uid", str(UID), "--gid",
             str(GID), "--chroot-base-dir", str(tmp_path), "--new-pid-ns", "--daemonize",
             "--", "30")
    assert r.returncode == 0, r.stderr
    pidfile = tmp_path / "probe" / jid / "root" / "probe.pid"
    pid = int(pidfile.read_text())
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
        # pid 1 of its own pid namespace, its own session, stdio on /dev/null
        assert re.search(rf"^NSpid:\s+{pid}\s+1$", status, re.M), status
        assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
        assert os.getsid(pid) == pid
        assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
        # the jailer returned after the exec: the ids are dropped already
        assert re.search(rf"^Uid:\s+{UID}\s", status, re.M), status
        assert re.search(r"^Name:\s+probe$", status, re.M), status
    finally:
        os.kill(pid, 9)


@pytest.mark.parametrize("flag", ["--daemonize", "--new-pid-ns"])
def test_forked_exec_failure_is_reported(vessel, tmp_path, flag):
    """A daemon's stderr is /dev/null: its failing exec is reported by the jailer that
    forked it, which exits non-zero and writes no pid file."""
    (tmp_path / "src").mkdir()
    bogus = tmp_path / "src" / "notelf"
    bogus.write_text("neither an ELF file nor a script\n")
    bogus.chmod(0o755)
    jid = "x-" + uuid.uuid4().hex[:12]
    r = jail(vessel, "--id", jid, "--exec-file", str(bogus), "--uid", str(UID), "--gid",
             str(GID), "--chroot-base-dir", str(tmp_path), flag,
             # a sanitizer build's exit-time leak check needs a /proc, which the jail has not
             env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})
    assert r.returncode != 0
    assert "exec /notelf in the jail" in r.stderr and "Exec format error" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "notelf" / jid / "root" / "notelf.pid").exists()


@pytest.mark.parametrize("case", ["missing exec file", "id with a slash", "id too long",
                                  "non-existent netns", "not a netns",
                                  "non-existent cgroup file", "unknown controller"])
def test_bad_input_one_line_nothing_left(vessel, probe, tmp_path, case):
    base = tmp_path / "base"
    base.mkdir()
    args = {"--id": "bad-" + uuid.uuid4().hex[:8], "--exec-file": str(probe), "--uid": "1",
            "--gid": "1", "--chroot-base-dir": str(base)}
    extra, want = [], None
    if case == "missing exec file":
        args["--exec-file"] = str(tmp_path / "nope")
        want = "--exec-file"
    elif case == "id with a slash":
        args["--id"] = "a/b"
        want = "--id `a/b`"
    elif case == "id too long":
        args["--id"] = "x" * 65
        want = "--id"
    elif case == "non-existent netns":
        extra = ["--netns", "/run/netns/vessel-no-such-netns"]
        want = "--netns /run/netns/vessel-no-such-netns"
    elif case == "not a netns":
        extra = ["--netns", "/proc/self/ns/mnt"]
        want = "not a network namespace"
    elif case == "non-existent cgroup file":
        version, files, _ = limits_for_host()
        ctrl = next(iter(files)).split(".")[0]
        extra = ["--cgroup-version", version, "--cgroup", f"{ctrl}.no_such_file=1"]
        want = f"cgroup file {ctrl}.no_such_file does not exist"
    elif case == "unknown controller":
        extra = ["--cgroup", "nosuchctrl.max=1"]
        want = "unknown controller"
    before = snapshot_host(base)
    argv = [x for kv in args.items() for x in kv] + extra + ["--", "1"]
    r = jail(vessel, *argv)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1 and want in lines[0], r.stderr
    assert r.stdout == ""
    assert snapshot_host(base) == before
    assert list(base.iterdir()) == []


def test_existing_root_is_reused_and_a_failure_keeps_it(vessel, probe, tmp_path):
    """As Firecracker's jailer: an existing root (where the orchestrator put the guest's
    files) is used; a failure removes only what the jailer itself put there."""
    root = tmp_path / "probe" / "busy" / "root"
    root.mkdir(parents=True)
    (root / "keep").write_text("x")
    r = jail(vessel, "--id", "busy", "--exec-file", str(probe), "--uid", "1", "--gid", "1",
             "--chroot-base-dir", str(tmp_path), "--cgroup", "nosuchctrl.max=1")
    assert r.returncode == 1
    assert "unknown controller" in r.stderr and len(r.stderr.strip().split("\n")) == 1
    assert sorted(os.listdir(root)) == ["keep"]
    assert (root / "keep").read_text() == "x"
    r = jail(vessel, "--id", "busy", "--exec-file", str(probe), "--uid", "1", "--gid", "1",
             "--chroot-base-dir", str(tmp_path), "--", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ready uid=1 gid=1")
    assert sorted(os.listdir(root)) == ["dev", "keep", "probe"]


# --- seccomp ---

def vm_demo(vessel, *args, timeout=60):
    return run([vessel, "vm", "run", "--demo", *args], stdin=subprocess.DEVNULL, timeout=timeout)


@pytest.fixture(scope="module")
def demo_vessel(vessel):
    # kvm-marked, so run only where KVM is hardware-assisted (here or in the emulated host)
    assert demo_runs(vessel), "the demo guest does not run on this KVM"
    return vessel


@pytest.mark.kvm
def test_seccomp_on_by_default_demo_boots(demo_vessel):
    r = vm_demo(demo_vessel, "--cpus", "2", "--rng")
    assert r.returncode == 0, r.stderr
    assert "POWEROFF" in r.stdout
    assert "seccomp" not in r.stderr


@pytest.mark.kvm
@pytest.mark.parametrize("thread", ["main", "vcpu", "worker"])
def test_forbidden_call_is_killed_and_reported(demo_vessel, thread):
    # the worker thread exists with a virtio device
    r = vm_demo(demo_vessel, "--rng", "--test-seccomp-violation", thread)
    assert r.returncode == 6, (r.returncode, r.stderr)
    assert re.search(rf"^vessel: seccomp: the {thread} thread made the forbidden syscall "
                     r"syslog \(103\) with arguments 0xa, 0x0, 0x0; stopping the VM$",
                     r.stderr, re.M), r.stderr


# (thread, case, the call refused and its arguments as the report prints them): an ioctl
# outside the thread's request list (KVM_CREATE_VM on fd -1), a netlink socket, an
# executable mapping
ARG_VIOLATIONS = [
    ("vcpu", "ioctl", r"ioctl \(16\) with arguments 0xffffffffffffffff, 0xae01, 0x0"),
    ("worker", "ioctl", r"ioctl \(16\) with arguments 0xffffffffffffffff, 0xae01, 0x0"),
    ("worker", "socket", r"socket \(41\) with arguments 0x10, 0x80003, 0x0"),
    ("vcpu", "exec", r"mmap \(9\) with arguments 0x0, 0x1000, 0x5"),
    ("worker", "exec", r"mmap \(9\) with arguments 0x0, 0x1000, 0x5"),
]


@pytest.mark.kvm
@pytest.mark.parametrize("thread,case,call", ARG_VIOLATIONS,
                         ids=[f"{t}-{c}" for t, c, _ in ARG_VIOLATIONS])
def test_forbidden_arguments_are_killed_and_reported(demo_vessel, thread, case, call):
    """An allowed call with arguments outside the thread's rules is killed like a forbidden
    call, and the report carries the arguments (which ioctl, which domain, which prot)."""
    r = vm_demo(demo_vessel, "--rng", "--test-seccomp-violation", f"{thread}:{case}")
    assert r.returncode == 6, (r.returncode, r.stderr)
    assert re.search(rf"^vessel: seccomp: the {thread} thread made the forbidden syscall "
                     rf"{call}; stopping the VM$", r.stderr, re.M), r.stderr


@pytest.mark.kvm
def test_no_seccomp_lets_the_call_through(demo_vessel):
    r = vm_demo(demo_vessel, "--rng", "--no-seccomp", "--test-seccomp-violation", "vcpu")
    assert r.returncode == 0, r.stderr
    assert "seccomp" not in r.stderr


# the demo's calls: FROM_BUILTIN a vCPU's without ioctl, EXTRA the rest the main and worker
# threads make (the sanitizer build's leak check at exit included)
FROM_BUILTIN = ["exit", "exit_group", "futex", "write", "read", "mmap", "munmap", "madvise",
                "rt_sigprocmask", "rt_sigreturn", "gettid", "getpid", "tgkill", "sigaltstack",
                "rseq", "set_robust_list", "sched_getaffinity", "clock_gettime", "brk"]
EXTRA = ["ioctl", "close", "openat", "epoll_wait", "epoll_ctl", "wait4", "clone", "clone3",
         "prctl", "getdents", "getdents64", "ptrace", "process_vm_readv", "getppid",
         "sched_yield", "rt_sigaction", "dup2", "poll", "nanosleep", "clock_nanosleep",
         "getrandom", "sched_setaffinity", "set_tid_address", "kill", "timerfd_settime",
         "newfstatat", "fstat", "mprotect", "readlink", "open",
         # the VM inventory's record, written at the start and removed at the exit
         "flock", "mkdirat", "unlinkat", "renameat2", "rename", "link", "linkat", "fsync",
         "fdatasync", "ftruncate", "pread64", "pwrite64", "lseek", "getdents64"]


@pytest.mark.kvm
def test_filter_file_replaces_the_lists(demo_vessel, tmp_path):
    """A vCPU list without ioctl: the first KVM_RUN is the forbidden call."""
    import json
    everything = sorted(set(FROM_BUILTIN + EXTRA))
    f = tmp_path / "filter.json"
    f.write_text(json.dumps({"main": everything, "vcpu": FROM_BUILTIN, "worker": everything}))
    r = vm_demo(demo_vessel, "--seccomp-filter", str(f))
    assert r.returncode == 6, (r.returncode, r.stderr)
    assert "the vcpu thread made the forbidden syscall ioctl (16)" in r.stderr, r.stderr


def _ioc(direction, nr, size, kind=0xAE):
    """Linux's _IOC on x86: the number an ioctl request is (KVM's type is 0xAE)."""
    return direction << 30 | size << 16 | kind << 8 | nr


KVM_RUN = _ioc(0, 0x80, 0)
KVM_IRQ_LINE = _ioc(1, 0x61, 8)
KVM_GET_REGS = _ioc(2, 0x81, 144)
KVM_GET_SREGS = _ioc(2, 0x83, 312)
TCGETS = 0x5401


def demo_filter(vcpu_ioctls):
    """A filter file for the demo guest whose vCPU list allows ioctl only with these
    request numbers, each rule in one of seccompiler's shapes."""
    everything = sorted(set(FROM_BUILTIN + EXTRA))
    vcpu = [n for n in everything if n != "ioctl"]
    for i, req in enumerate(vcpu_ioctls):
        arg = ({"index": 1, "type": "dword", "op": "eq", "val": req} if i % 2 == 0 else
               {"index": 1, "type": "qword", "op": {"masked_eq": 0xffffffff}, "val": req,
                "comment": "the low half: the kernel's unsigned int"})
        vcpu.append({"syscall": "ioctl", "args": [arg]})
    return {"main": everything, "vcpu": vcpu, "worker": everything}


@pytest.mark.kvm
def test_filter_file_argument_rules_allow_the_boot(demo_vessel, tmp_path):
    """ioctl with the vCPU's request numbers only (and the sanitizers' TCGETS): the demo
    runs to its poweroff."""
    import json
    f = tmp_path / "filter.json"
    f.write_text(json.dumps(demo_filter([KVM_RUN, KVM_IRQ_LINE, KVM_GET_REGS, KVM_GET_SREGS,
                                         TCGETS])))
    r = vm_demo(demo_vessel, "--cpus", "2", "--seccomp-filter", str(f))
    assert r.returncode == 0, r.stderr
    assert "POWEROFF" in r.stdout and "seccomp" not in r.stderr


@pytest.mark.kvm
def test_filter_file_argument_rule_without_kvm_run_stops_the_vm(demo_vessel, tmp_path):
    """The same file without KVM_RUN: the vCPU's first KVM_RUN is refused and reported
    with its number (0xae80)."""
    import json
    f = tmp_path / "filter.json"
    f.write_text(json.dumps(demo_filter([KVM_IRQ_LINE, KVM_GET_REGS, KVM_GET_SREGS, TCGETS])))
    r = vm_demo(demo_vessel, "--seccomp-filter", str(f))
    assert r.returncode == 6, (r.returncode, r.stderr)
    assert re.search(r"^vessel: seccomp: the vcpu thread made the forbidden syscall ioctl "
                     r"\(16\) with arguments 0x[0-9a-f]+, 0xae80, 0x0; stopping the VM$",
                     r.stderr, re.M), r.stderr


@pytest.mark.parametrize("body,want", [
    ("[]", "must be an object"),
    ('{"main": [], "vcpu": [{"args": []}], "worker": []}', "vcpu[0]: not a syscall name or"),
    ('{"main": [], "vcpu": [{"syscall": "ioctl", "arg": []}], "worker": []}',
     "vcpu[0]: unknown key `arg`"),
    ('{"main": [], "vcpu": [{"syscall": "ioctl", "args": [{"index": 6, "op": "eq", "val": 1}]}],'
     ' "worker": []}', "vcpu[0].args[0].index: must be an argument's index, 0 to 5"),
    ('{"main": [], "vcpu": [], "worker": [{"syscall": "ioctl", "args": [{"index": 1, '
     '"op": "is", "val": 1}]}]}', "worker[0].args[0].op:"),
    ('{"main": [], "vcpu": [], "worker": [{"syscall": "ioctl", "args": [{"index": 1, '
     '"op": "eq", "val": "44672"}]}]}', "worker[0].args[0].val: must be a 64-bit integer"),
    ('{"main": [], "vcpu": [], "worker": [{"syscall": "ioctl", "args": [{"index": 1, '
     '"type": "dword", "op": "eq", "val": 4294967296}]}]}',
     "worker[0].args[0].val: must be a 32-bit integer"),
    ('{"main": [], "vcpu": [], "worker": [{"syscall": "ioctl", "args": [{"index": 1, '
     '"type": "dword", "op": "lt", "val": 5}]}]}', "a dword compares with \"eq\" or"),
    ('{"main": [], "vcpu": [], "worker": [{"syscall": "mmap", "args": [{"index": 2, '
     '"op": "eq", "val": 3}, {"index": 2, "op": "ne", "val": 7}]}]}',
     "worker[0].args[1]: argument 2 is already compared"),
    ('{"main": [], "vcpu": [], "worker": [{"syscall": "mmap", "args": [{"index": 2, '
     '"op": {"masked_eq": 4}, "val": 0, "type": "word"}]}]}', "args[0].type: \"dword\" or"),
    ('{"main": [], "vcpu": []}', "no list for the worker thread"),
    ('{"main": ["read"], "vcpu": ["no_such_call"], "worker": []}', "vcpu[0]: not a syscall name"),
    ('{"main": [], "vcpu": [], "worker": [], "api2": []}', "`api2`: not a thread"),
    ("{", "line 1"),
])
def test_bad_filter_file_one_line(vessel, tmp_path, body, want):
    f = tmp_path / "filter.json"
    f.write_text(body)
    r = run([vessel, "vm", "run", "--demo", "--seccomp-filter", str(f)], stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().split("\n")
    assert len(lines) == 1 and want in lines[0] and str(f) in lines[0], r.stderr


@pytest.mark.kvm
def test_jailed_vmm_runs_the_demo_guest_with_seccomp(demo_vessel, tmp_path):
    sv = static_vessel()
    assert sv, "no static vessel: run `make vessel` (the jail holds no shared libraries)"
    jid = "vm-" + uuid.uuid4().hex[:8]
    r = run([demo_vessel, "jail", "--id", jid, "--exec-file", str(sv), "--uid", str(UID),
             "--gid", str(GID), "--chroot-base-dir", str(tmp_path), "--new-pid-ns",
             "--", "vm", "run", "--demo", "--cpus", "2"], stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 0, r.stderr
    pidfile = tmp_path / "vessel" / jid / "root" / "vessel.pid"
    pid = int(pidfile.read_text())
    # the parent returns at once; the jailed VMM runs the guest to its poweroff
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}")


@pytest.mark.kvm
def test_jailed_vmm_boots_linux_with_seccomp(tmp_path):
    """The static VMM, jailed, boots the default guest with every thread filtered: the
    kernel and initrd are copied into the jail, the guest's init prints and powers off."""
    sv = static_vessel()
    assert sv, "no static vessel: run `make vessel` (the jail holds no shared libraries)"
    images = next((pathlib.Path(c) for c in (os.environ.get("VESSEL_IMAGES"),
                                            ROOT / "images" / "out")
                   if c and pathlib.Path(c, "vmlinux").is_file()), None)
    assert images, "images/out missing: run `make images`"
    jid = "linux-" + uuid.uuid4().hex[:8]
    root = tmp_path / "vessel" / jid / "root"
    # the orchestrator's part (Firecracker's too): the guest's files go into the root
    root.mkdir(parents=True)
    for f in ("vmlinux", "initrd.img"):
        shutil.copy(images / f, root / f)
        os.chmod(root / f, 0o644)
    p = subprocess.Popen([vessel_path(), "jail", "--id", jid, "--exec-file", str(sv),
                          "--uid", str(UID), "--gid", str(GID), "--chroot-base-dir",
                          str(tmp_path), "--", "vm", "run", "--kernel", "/vmlinux",
                          "--initrd", "/initrd.img", "--cpus", "2", "--memory", "256M",
                          "--rng", "--cmdline", "console=ttyS0 panic=-1 quiet",
                          "--", "sh", "-c", "echo T:jailed-linux-ok; poweroff -f"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=400)
    finally:
        p.kill()
    assert p.returncode == 0, err + out[-2000:]
    assert "T:jailed-linux-ok" in out, out[-2000:] + err
    assert "seccomp" not in err
