"""Crash-safe create and delete (issue 14 §2): `create` and `start` killed with SIGKILL at
any point leave a container that `state`, `list` and `delete -f` see, and `delete -f`
removes all of it; create/start/delete cycles leave nothing behind."""
import gc
import os
import random
import re
import signal
import subprocess
import time
import uuid

import pytest

# LSan's scan at exit is about two thirds of what a vessel command costs in the sanitizer
# build (measured over 15 cycles: create+start+delete 557 ms a cycle with it, 191 ms
# without). The loops below are about what vessel leaves outside itself; every other
# test keeps leak detection on.
FAST_ENV = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0"}

# The issue asks for 1000 cycles: VESSEL_CRASH_CYCLES=1000 took 335 s when run once
# (2026-12-06, sanitizer build, 2 cores shared with an emulated KVM host busy at the same
# time; 150 cycles took 44 s in the same conditions). The default keeps this file near
# 90 s.
CYCLES = int(os.environ.get("VESSEL_CRASH_CYCLES", "150"))
CRASH_ROUNDS = int(os.environ.get("VESSEL_CRASH_ROUNDS", "100"))


def cgroup_mounts():
    """Every cgroup hierarchy of this host (v1 controllers, name=systemd, cgroup2)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                out.append(fields[4])
    return out


def mounts_of(words):
    """Mount lines that name any of words, plus every nsfs (netns bind) mount."""
    with open("/proc/self/mountinfo") as f:
        return sorted(l.split(" ", 4)[4] for l in f
                      if " nsfs " in l or any(w in l for w in words))


def marked_pids(token):
    """Processes whose environment carries the token: the runtimes, inits before their
    exec, and the containers' programs after it."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                if token.encode() in f.read():
                    with open(f"/proc/{p}/stat") as s:
                        if s.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                            pids.append(int(p))
        except OSError:
            pass
    return pids


def cgroup_dirs(ids):
    return [f"{m}/vessel/{cid}" for m in cgroup_mounts() for cid in ids
            if os.path.exists(f"{m}/vessel/{cid}")]


def netns_entries():
    return sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []


class Crasher:
    def __init__(self, bundle):
        self.b = bundle
        self.token = "VESSEL_CRASH_" + uuid.uuid4().hex
        self.env = {**FAST_ENV, self.token: "1"}
        self.b.config["process"]["env"] = [*self.b.config["process"].get("env", []),
                                           f"{self.token}=1"]
        self.b.args("sleep", "1000")
        self.b.write()
        self.log = open(self.b.path / "vessel.log", "w")

    def argv(self, *a):
        return [self.b.vessel, "--root", str(self.b.root), *a]

    def popen(self, *a):
        # files, not pipes: an init keeps create's stdio for as long as it lives
        return subprocess.Popen(self.argv(*a), stdin=subprocess.DEVNULL, stdout=self.log,
                                stderr=self.log, env=self.env)

    def run(self, *a, timeout=60):
        p = subprocess.run(self.argv(*a), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=self.env, text=True, timeout=timeout)
        return p

    def create(self, cid):
        p = self.popen("create", "--bundle", str(self.b.path), cid)
        assert p.wait(timeout=60) == 0, (self.b.path / "vessel.log").read_text()

    def timed(self, *a):
        t = time.monotonic()
        self.popen(*a).wait(timeout=60)
        return time.monotonic() - t

    def killed(self, *a, within):
        """Runs a command and SIGKILLs it after a random part of its usual duration."""
        p = self.popen(*a)
        time.sleep(random.uniform(0, within))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)


@pytest.fixture
def crasher(bundle):
    c = Crasher(bundle)
    yield c
    for cid in bundle.ids:
        c.run("delete", "--force", cid)
    for pid in marked_pids(c.token):
        os.kill(pid, signal.SIGKILL)
    c.log.close()


def assert_nothing_left(c, ids, mounts_before, netns_before):
    words = [str(c.b.root), *ids]
    assert marked_pids(c.token) == []
    assert cgroup_dirs(ids) == []
    assert mounts_of(words) == mounts_before
    assert netns_entries() == netns_before
    root = c.b.root
    assert not root.exists() or sorted(os.listdir(root)) == []


def test_killed_create_and_start_leave_nothing_after_delete_force(crasher):
    c, b = crasher, crasher.b
    seed = int(os.environ.get("VESSEL_CRASH_SEED", random.randrange(1 << 30)))
    random.seed(seed)
    print(f"seed {seed} (VESSEL_CRASH_SEED reruns it), {CRASH_ROUNDS} rounds")
    mounts_before, netns_before = mounts_of([str(b.root)]), netns_entries()
    # how long each step takes here, so the kills land anywhere inside it
    warm = b.new_id()
    t_create = c.timed("create", "--bundle", str(b.path), warm)
    t_start = c.timed("start", warm)
    assert c.run("delete", "--force", warm).returncode == 0
    for i in range(CRASH_ROUNDS):
        cid = b.new_id()
        if i % 2 == 0:
            c.killed("create", "--bundle", str(b.path), cid, within=t_create * 1.2)
        else:
            c.create(cid)
            c.killed("start", cid, within=t_start * 1.2)
    # every container that has a directory is seen, whatever state it was left in
    listed = c.run("list", "--quiet").stdout.split()
    for cid in b.ids[1:]:
        has_dir = (b.root / cid).exists()
        r = c.run("state", cid)
        if has_dir:
            assert r.returncode == 0, r.stderr
            assert cid in listed
        else:
            assert "does not exist" in r.stderr and "no state yet" not in r.stderr
    for cid in b.ids:
        r = c.run("delete", "--force", cid)
        assert r.returncode == 0, f"{cid}: {r.stderr}"
    assert_nothing_left(c, b.ids, mounts_before, netns_before)


def test_garbled_record_is_removed_by_delete_force_with_an_error(crasher):
    c, b = crasher, crasher.b
    cid = b.new_id()
    (b.root / cid).mkdir(parents=True)
    (b.root / cid / "state.json").write_text('{"id": "' + cid + '", "pid": "12"')
    listed = c.run("list", "--format", "json")
    assert listed.returncode == 0 and cid in listed.stdout and "state record" in listed.stderr
    r = c.run("state", cid)
    assert r.returncode != 0 and "state record" in r.stderr
    r = c.run("delete", "--force", cid)
    assert r.returncode != 0
    assert "removed the state directory" in r.stderr and "state.json" in r.stderr
    assert not (b.root / cid).exists()


def test_delete_waits_for_a_live_create(crasher):
    """delete takes the container's lock: it never removes a create still under way."""
    c, b = crasher, crasher.b
    cid = b.new_id()
    p = c.popen("create", "--bundle", str(b.path), cid)
    while not (b.root / cid).exists() and p.poll() is None:
        time.sleep(0.001)
    assert c.run("delete", "--force", cid).returncode == 0
    assert p.wait(timeout=60) == 0 or not (b.root / cid).exists()
    assert not (b.root / cid).exists() and cgroup_dirs([cid]) == []


def fds():
    """What this process's fds point at (pipe:, socket:, paths), numbers left out: a leak
    adds an entry. Earlier tests' objects (a gRPC client's threads, a file the garbage
    collector closes) may free one fd number and take another meanwhile; that is no
    leak. Epoll/eventfd instances of those libraries are left out for the same reason."""
    gc.collect()
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own fd, closed by now
        if not target.startswith("anon_inode:"):
            out.append(re.sub(r"\[\d+\]$", "", target))
    return sorted(out)


def test_create_start_delete_cycles_leave_everything_as_it_was(crasher):
    c, b = crasher, crasher.b
    # one cycle first: /vessel in each hierarchy is shared and stays
    cid = b.new_id()
    c.create(cid)
    assert c.run("start", cid).returncode == 0
    assert c.run("delete", "--force", cid).returncode == 0
    words = [str(b.root), "/vessel/"]
    mine = b.ids[0]
    before = (fds(), mounts_of(words), netns_entries(), cgroup_tree(mine))
    t = time.monotonic()
    for i in range(CYCLES):
        cid = f"{b.ids[0]}-{i}"
        c.create(cid)
        r = c.run("start", cid)
        assert r.returncode == 0, r.stderr
        r = c.run("delete", "--force", cid)
        assert r.returncode == 0, r.stderr
    took = time.monotonic() - t
    print(f"{CYCLES} create/start/delete cycles: {took:.1f} s "
          f"({took / max(CYCLES, 1) * 1000:.0f} ms a cycle)")
    assert (fds(), mounts_of(words), netns_entries(), cgroup_tree(mine)) == before
    assert marked_pids(c.token) == []
    assert sorted(os.listdir(b.root)) == []


def cgroup_tree(word):
    """Every directory under /vessel in every hierarchy that names word (other suites
    may run containers of their own meanwhile)."""
    out = []
    for m in cgroup_mounts():
        for d, subdirs, _ in os.walk(f"{m}/vessel"):
            out += [f"{d}/{s}" for s in subdirs if word in f"{d}/{s}"]
    return sorted(out)
