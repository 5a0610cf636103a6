"""vessel run by a user who is not root, as podman's rootless mode runs it.

The suite makes a user of its own (useradd, with /etc/subuid and /etc/subgid ranges) and
drops to it with runuser; everything that user runs keeps its state in a private
directory under /tmp (HOME, XDG_RUNTIME_DIR, podman's storage), removed with the user.
This host mounts the v1 controllers under /sys/fs/cgroup/* and cgroup2 (with no
controllers) at /sys/fs/cgroup/unified: nothing is delegated, so rootless containers run
without a cgroup of their own and vessel says so once.
"""
import json
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import run
from clients import rootfs_tar, wait_for

IMAGE = "localhost/vessel-busybox:rootless"


def hybrid_cgroups():
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == "/sys/fs/cgroup/unified" for line in f)


def processes_of(uid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def subids(path, name):
    with open(path) as f:
        for line in f:
            user, start, count = line.strip().split(":")
            if user == name:
                return int(start), int(count)
    return None


class User:
    """A user of the suite's own and a private directory it owns (HOME and
    XDG_RUNTIME_DIR under it: a short path, conmon's sockets live below)."""

    def __init__(self):
        self.name = f"vrl{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
        r = run(["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                 "/bin/sh", "--user-group", self.name], timeout=30)
        assert r.returncode == 0, f"useradd: {r.stderr}"
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        # useradd gives ranges when login.defs has SUB_UID_COUNT; make sure of them
        if not subids("/etc/subuid", self.name) or not subids("/etc/subgid", self.name):
            start = 300000 + (self.uid % 1000) * 65536
            r = run(["usermod", "--add-subuids", f"{start}-{start + 65535}",
                     "--add-subgids", f"{start}-{start + 65535}", self.name], timeout=30)
            assert r.returncode == 0, f"usermod: {r.stderr}"
        self.subuid = subids("/etc/subuid", self.name)
        self.subgid = subids("/etc/subgid", self.name)
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="vrl-", dir="/tmp"))
        os.chmod(self.work, 0o755)
        self.home = self.work / "home"
        self.runtime_dir = self.work / "run"
        for d in (self.home, self.runtime_dir):
            d.mkdir()
            os.chown(d, self.uid, self.gid)
        os.chmod(self.runtime_dir, 0o700)
        self.env = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
                    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                    "XDG_RUNTIME_DIR": str(self.runtime_dir),
                    "XDG_CONFIG_HOME": str(self.home / ".config"),
                    "XDG_DATA_HOME": str(self.home / ".local" / "share")}
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if key in os.environ:
                self.env[key] = os.environ[key]

    def argv(self, *argv, env=None):
        e = {**self.env, **(env or {})}
        return ["runuser", "-u", self.name, "--", "env", "-i",
                *[f"{k}={v}" for k, v in e.items() if v is not None], *argv]

    def __call__(self, *argv, timeout=60, env=None, **kw):
        return run(self.argv(*argv, env=env), timeout=timeout, cwd=self.work, **kw)

    def own_dir(self, name):
        d = self.work / name
        d.mkdir()
        os.chown(d, self.uid, self.gid)
        return d

    def remove(self):
        """Kills what the user left (by pid, the user's own only) and removes it."""
        left = processes_of(self.uid)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while processes_of(self.uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        r = run(["userdel", self.name], timeout=30)
        shutil.rmtree(self.work, ignore_errors=True)
        assert r.returncode == 0, f"userdel {self.name}: {r.stderr}"
        return left


@pytest.fixture(scope="module")
def user():
    u = User()
    try:
        yield u
    finally:
        u.remove()


class RootlessBundle:
    """The busybox bundle, configured as `vessel spec --rootless` would: a user namespace
    mapping the user to root, no limits."""

    def __init__(self, vessel, base, user, path):
        self.vessel, self.user, self.path = vessel, user, path
        self.config = json.loads((base / "config.json").read_text())
        self.config["root"]["path"] = str(base / "rootfs")
        self.config["process"]["terminal"] = False
        lx = self.config["linux"]
        lx.pop("resources", None)
        if not any(n["type"] == "user" for n in lx["namespaces"]):
            lx["namespaces"].append({"type": "user"})
        self.map_own_id()
        self.ids = []

    def map_own_id(self):
        self.config["linux"]["uidMappings"] = [
            {"containerID": 0, "hostID": self.user.uid, "size": 1}]
        self.config["linux"]["gidMappings"] = [
            {"containerID": 0, "hostID": self.user.gid, "size": 1}]

    def map_subids(self):
        """Root is the user; ids 1 to 65535 come from /etc/subuid and /etc/subgid."""
        (us, uc), (gs, gc) = self.user.subuid, self.user.subgid
        self.config["linux"]["uidMappings"] = [
            {"containerID": 0, "hostID": self.user.uid, "size": 1},
            {"containerID": 1, "hostID": us, "size": min(uc, 65535)}]
        self.config["linux"]["gidMappings"] = [
            {"containerID": 0, "hostID": self.user.gid, "size": 1},
            {"containerID": 1, "hostID": gs, "size": min(gc, 65535)}]

    def write(self):
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        os.chmod(self.path / "config.json", 0o644)

    def sh(self, script):
        self.config["process"]["args"] = ["/bin/sh", "-c", script]
        return self

    def cmd(self, *argv, timeout=60, env=None, **kw):
        return self.user(self.vessel, *argv, timeout=timeout, env=env, **kw)

    def run(self, *extra, env=None, timeout=60):
        self.write()
        self.ids.append("r" + uuid.uuid4().hex[:10])
        return self.cmd("run", "--bundle", str(self.path), *extra, self.ids[-1], env=env,
                        timeout=timeout)

    def create(self):
        """create as the user, its stdio files (not pipes: the container holds them)."""
        self.write()
        cid = "c" + uuid.uuid4().hex[:10]
        self.ids.append(cid)
        out, err = self.path / f"{cid}.out", self.path / f"{cid}.err"
        with open(out, "w") as o, open(err, "w") as e:
            os.chown(out, self.user.uid, self.user.gid)
            p = subprocess.run(self.user.argv(self.vessel, "create", "--bundle",
                                              str(self.path), cid),
                               stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=60,
                               cwd=self.path)
        return cid, subprocess.CompletedProcess(p.args, p.returncode, out.read_text(),
                                                err.read_text())

    def state(self, cid):
        r = self.cmd("state", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def cleanup(self):
        for cid in self.ids:
            self.cmd("delete", "--force", cid, timeout=30)


@pytest.fixture
def rbundle(vessel, base_bundle, user):
    path = user.own_dir("b" + uuid.uuid4().hex[:8])
    b = RootlessBundle(vessel, base_bundle, user, path)
    yield b
    b.cleanup()


def status_ids(pid):
    """Real uid and gid of a host pid, as the host sees them."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


# ------------------------------------------------------------------------- vessel alone

def test_run_as_a_user_is_root_inside_the_user_outside(rbundle, user):
    r = rbundle.sh("echo ran; id -u; id -g; cat /proc/self/uid_map").run()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["ran", "0", "0"], r.stdout
    assert lines[3].split() == ["0", str(user.uid), "1"], r.stdout
    # the state lived under $XDG_RUNTIME_DIR/vessel, as runc's under $XDG_RUNTIME_DIR/runc
    assert (user.runtime_dir / "vessel").is_dir()
    assert os.stat(user.runtime_dir / "vessel").st_uid == user.uid
    if hybrid_cgroups():
        warnings = [line for line in r.stderr.splitlines() if "warning" in line]
        assert len(warnings) == 1, r.stderr
        assert "rootless" in warnings[0] and "no limits are applied" in warnings[0]


def test_the_process_runs_as_the_users_uid_on_the_host(rbundle, user):
    rbundle.sh("echo started > /dev/shm/up; exec sleep 60")
    cid, r = rbundle.create()
    assert r.returncode == 0, r.stderr
    assert rbundle.cmd("start", cid).returncode == 0
    st = rbundle.state(cid)
    assert st["status"] == "running"
    pid = st["pid"]
    wait_for(lambda: os.path.exists(f"/proc/{pid}/root/dev/shm/up"), what="the container")
    assert status_ids(pid) == (user.uid, user.gid)
    # inside it is root, and pid 1
    r = rbundle.cmd("exec", cid, "/bin/sh", "-c", "id -u; echo $$; cat /proc/1/cmdline")
    assert r.returncode == 0, r.stderr
    out = r.stdout.split("\n")
    assert out[0] == "0" and out[2].replace("\0", " ").strip() == "sleep 60", r.stdout


def test_sys_fs_cgroup_shows_the_callers_cgroups_read_only(rbundle):
    """No cgroup of its own: /sys/fs/cgroup binds the caller's, as crun shows them."""
    r = rbundle.sh("ls /sys/fs/cgroup; test -f /sys/fs/cgroup/pids/cgroup.procs && "
                   "echo procs; echo 0 > /sys/fs/cgroup/pids/cgroup.procs || echo ro").run()
    assert r.returncode == 0, r.stderr
    out = r.stdout.split()
    assert "memory" in out and "pids" in out, r.stdout
    if hybrid_cgroups():
        assert "unified" in out, r.stdout
    assert out[-2:] == ["procs", "ro"], r.stdout


def test_single_id_map_denies_setgroups(rbundle):
    r = rbundle.sh("cat /proc/self/setgroups").run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "deny"


def test_subid_ranges_through_newuidmap(rbundle, user):
    rbundle.map_subids()
    for kind in ("bounding", "effective", "permitted"):
        rbundle.config["process"]["capabilities"][kind].append("CAP_CHOWN")
    r = rbundle.sh("cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; "
                   "touch /dev/shm/f && chown 1000:1000 /dev/shm/f && "
                   "stat -c '%u:%g' /dev/shm/f").run()
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.splitlines()]
    (us, _), (gs, _) = user.subuid, user.subgid
    assert lines[0] == ["0", str(user.uid), "1"] and lines[1] == ["1", str(us), "65535"]
    assert lines[2] == ["0", str(user.gid), "1"] and lines[3] == ["1", str(gs), "65535"]
    # newgidmap keeps setgroups allowed, and ids past 0 are really mapped
    assert lines[4] == ["allow"] and lines[5] == ["1000:1000"], r.stdout


def test_exec_kill_delete(rbundle, user):
    rbundle.sh("trap 'exit 3' TERM; while true; do sleep 0.05; done")
    cid, r = rbundle.create()
    assert r.returncode == 0, r.stderr
    assert rbundle.cmd("start", cid).returncode == 0
    r = rbundle.cmd("exec", cid, "/bin/sh", "-c", "id -u; ps -o pid,args | grep -c sleep")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "0"
    listed = rbundle.cmd("list", "--format", "json")
    assert cid in [c["id"] for c in json.loads(listed.stdout)], listed.stderr
    # no cgroup: ps finds the processes by the init's pid namespace
    pid = rbundle.state(cid)["pid"]
    r = rbundle.cmd("exec", "--detach", cid, "sleep", "30")
    assert r.returncode == 0, r.stderr
    r = rbundle.cmd("ps", "--format", "json", cid)
    assert r.returncode == 0, r.stderr
    pids = json.loads(r.stdout)
    assert pid in pids and len(pids) >= 2, pids
    # and what needs a cgroup says there is none, not that the host lacks a controller
    r = rbundle.cmd("pause", cid)
    assert r.returncode != 0 and "no cgroup of its own" in r.stderr, r.stderr
    assert rbundle.cmd("kill", cid, "TERM").returncode == 0
    wait_for(lambda: rbundle.state(cid)["status"] == "stopped", what="the container to stop")
    r = rbundle.cmd("delete", cid)
    assert r.returncode == 0, r.stderr
    assert not (user.runtime_dir / "vessel" / cid).exists()
    assert rbundle.cmd("state", cid).returncode != 0


def test_delete_force_kills_a_running_container(rbundle):
    rbundle.sh("exec sleep 60")
    cid, r = rbundle.create()
    assert r.returncode == 0, r.stderr
    assert rbundle.cmd("start", cid).returncode == 0
    pid = rbundle.state(cid)["pid"]
    r = rbundle.cmd("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the init to go")


def test_limits_asked_for_are_named_in_one_warning(rbundle):
    rbundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20},
                                            "pids": {"limit": 100}}
    r = rbundle.sh("echo ran").run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ran"
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, r.stderr
    assert "limits are not applied" in warnings[0]
    assert "memory, pids" in warnings[0]


def test_a_cgroup_path_given_must_work(rbundle):
    """crun ignores cgroup errors rootless only when the config named no path."""
    rbundle.config["linux"]["cgroupsPath"] = "/vessel-rootless-test/x"
    r = rbundle.sh("echo ran").run()
    assert r.returncode != 0
    assert "ran" not in r.stdout
    assert "linux.cgroupsPath" in r.stderr and "Permission denied" in r.stderr, r.stderr


def test_a_config_without_user_namespace_is_refused(rbundle):
    lx = rbundle.config["linux"]
    lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "user"]
    del lx["uidMappings"], lx["gidMappings"]
    r = rbundle.sh("echo ran").run()
    assert r.returncode != 0 and "ran" not in r.stdout
    assert "needs a user namespace" in r.stderr, r.stderr


def test_no_xdg_runtime_dir_says_what_to_do(rbundle):
    r = rbundle.sh("echo ran").run(env={"XDG_RUNTIME_DIR": None})
    assert r.returncode != 0
    assert "XDG_RUNTIME_DIR" in r.stderr and "--root" in r.stderr, r.stderr


def test_a_map_past_the_users_ranges_is_refused_by_newuidmap(rbundle, user):
    rbundle.map_subids()
    rbundle.config["linux"]["uidMappings"][1]["hostID"] = 10
    r = rbundle.sh("echo ran").run()
    assert r.returncode != 0 and "ran" not in r.stdout
    assert "newuidmap" in r.stderr and "linux.uidMappings" in r.stderr, r.stderr


# ------------------------------------------------------------------------ podman rootless

class RootlessPodman:
    """The user's podman with vessel as its runtime: storage (vfs), containers.conf and
    runtime directory in the user's private directory."""

    def __init__(self, vessel, user):
        self.vessel, self.user = vessel, user
        w = user.own_dir("podman")
        (w / "containers.conf").write_text(
            "[engine]\n"
            "cgroup_manager = \"cgroupfs\"\n"
            "events_logger = \"file\"\n"
            f"events_logfile_path = \"{w}/events.log\"\n"
            f"tmp_dir = \"{w}/tmp\"\n"
            f"volume_path = \"{w}/volumes\"\n")
        # rootless, graphroot is ignored: rootless_storage_path is where images go
        (w / "storage.conf").write_text(
            "[storage]\n"
            "driver = \"vfs\"\n"
            f"graphroot = \"{w}/root\"\n"
            f"rootless_storage_path = \"{w}/root\"\n"
            f"runroot = \"{w}/rr\"\n")
        self.env = {"CONTAINERS_CONF": str(w / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(w / "storage.conf")}
        self.work = w

    def argv(self, *args):
        return self.user.argv("podman", "--runtime", self.vessel, *args, env=self.env)

    def __call__(self, *args, timeout=60, **kw):
        return run(self.argv(*args), timeout=timeout, cwd=self.work, **kw)

    def ok(self, *args, timeout=60):
        r = self(*args, timeout=timeout)
        assert r.returncode == 0, f"podman {' '.join(args)}: {r.stderr}{r.stdout}"
        return r.stdout

    def import_image(self, rootfs, ref):
        p = subprocess.run(self.argv("import", "--change", "CMD /bin/sh", "-", ref),
                           input=rootfs_tar(rootfs), cwd=self.work, capture_output=True,
                           timeout=120)
        assert p.returncode == 0, f"podman import: {p.stderr.decode(errors='replace')}"


@pytest.fixture(scope="module")
def podman(vessel, user, base_bundle):
    p = RootlessPodman(vessel, user)
    p.import_image(base_bundle / "rootfs", IMAGE)
    try:
        yield p
    finally:
        p("rm", "--all", "--force", "--time", "0", timeout=120)
        p("rmi", "--all", "--force", timeout=120)


def test_podman_rootless_run_rm(podman, user):
    r = podman("run", "--rm", "--network", "none", IMAGE, "/bin/sh", "-c",
               "echo pid=$$; id -u; cat /proc/self/uid_map; exit 4")
    assert r.returncode == 4, r.stderr
    out = r.stdout.splitlines()
    assert out[:2] == ["pid=1", "0"], r.stdout
    # podman's user namespace: root is the user, the rest its /etc/subuid range
    assert out[2].split() == ["0", str(user.uid), "1"], r.stdout
    assert out[3].split()[1] == str(user.subuid[0]), r.stdout
    assert podman.ok("ps", "--all", "--quiet").strip() == ""
    # runc's rule: the runtime's state under the user's XDG_RUNTIME_DIR
    assert (user.runtime_dir / "vessel").is_dir()


def test_podman_rootless_exec_kill_rm(podman, user):
    name = "vrl-" + uuid.uuid4().hex[:8]
    podman.ok("run", "-d", "--network", "none", "--name", name, IMAGE, "sleep", "300")
    try:
        pid = int(podman.ok("inspect", "--format", "{{.State.Pid}}", name).strip())
        assert status_ids(pid)[0] == user.uid
        r = podman("exec", name, "/bin/sh", "-c", "id -u; cat /proc/1/cmdline; exit 6")
        assert r.returncode == 6, r.stderr
        assert r.stdout.split("\n")[0] == "0"
        assert r.stdout.split("\n")[1].replace("\0", " ").strip() == "sleep 300"
        podman.ok("kill", name, timeout=30)
        wait_for(lambda: podman.ok("inspect", "--format", "{{.State.Status}}", name).strip()
                 == "exited", what="the container to exit")
        assert podman.ok("inspect", "--format", "{{.State.ExitCode}}", name).strip() == "137"
    finally:
        podman.ok("rm", "--force", "--time", "0", name, timeout=60)
    assert name not in podman.ok("ps", "--all", "--format", "{{.Names}}").split()
