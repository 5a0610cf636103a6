"""Configs that runc and crun run (issue 14 §1): vessel runs them the same way."""
import json
import os
import pathlib
import shutil
import time

import pytest


def out_of(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def own_rootfs(bundle, tmp_path):
    """A copy of the shared rootfs this test may change."""
    rootfs = tmp_path / "rootfs"
    shutil.copytree(bundle.config["root"]["path"], rootfs, symlinks=True)
    bundle.config["root"]["path"] = str(rootfs)
    return rootfs


def seccomp_denying(*names):
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": list(names), "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}]}


# ---------------------------------------------------------------- seccomp


@pytest.mark.parametrize("nnp", [True, False])
def test_a_profile_without_close_range_still_runs(bundle, nnp):
    """Profiles older than Linux 5.9 do not list close_range: vessel's own work must not
    depend on what the user's filter allows."""
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = seccomp_denying("close_range")
    assert out_of(bundle.args("echo", "ran").run()) == "ran\n"


def test_exec_under_a_profile_without_close_range(bundle):
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = seccomp_denying("close_range")
    cid, r = bundle.args("sleep", "30").create()
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    assert out_of(bundle.cmd("exec", cid, "echo", "in")) == "in\n"


# ---------------------------------------------------------------- --help


@pytest.mark.parametrize("cmd", ["create", "start", "run", "state", "kill", "delete", "exec",
                                 "ps", "pause", "resume", "update", "events", "list",
                                 "spec", "features"])
def test_every_command_answers_help(vessel, cmd, tmp_path):
    from conftest import run
    r = run([vessel, "--root", str(tmp_path), cmd, "--help"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "usage" in (r.stdout + r.stderr).lower() or cmd == "features"


# ---------------------------------------------------------------- hooks

LOG_HOOK = """#!/bin/sh
state=$(cat)
echo "$1 ${HOOK_VAR:-unset} $state" >> "$(dirname "$0")/log"
exit ${2:-0}
"""


from conftest import make_hook_dir  # noqa: E402


def hook_dir(bundle):
    return make_hook_dir(bundle, LOG_HOOK)


def hook_log(d):
    return [l.split(" ", 2) for l in (d / "log").read_text().splitlines()]


def test_a_failing_poststart_or_poststop_hook_does_not_stop_the_others(bundle):
    d = hook_dir(bundle)
    h = str(d / "hook.sh")
    bundle.config["hooks"] = {
        k: [{"path": h, "args": ["hook.sh", f"{k}1", "3"]},
            {"path": h, "args": ["hook.sh", f"{k}2"]}] for k in ("poststart", "poststop")}
    r = bundle.args("true").run()
    assert r.returncode == 0, r.stderr
    assert [l[0] for l in hook_log(d)] == ["poststart1", "poststart2", "poststop1",
                                           "poststop2"]
    assert "hooks.poststart[0]" in r.stderr and "hooks.poststop[0]" in r.stderr


def test_a_failing_prestart_hook_still_stops_create(bundle):
    d = hook_dir(bundle)
    h = str(d / "hook.sh")
    bundle.config["hooks"] = {"createRuntime": [{"path": h, "args": ["hook.sh", "a", "3"]},
                                                {"path": h, "args": ["hook.sh", "b"]}]}
    cid, r = bundle.args("true").create()
    assert r.returncode != 0 and "hooks.createRuntime[0]" in r.stderr
    assert [l[0] for l in hook_log(d)] == ["a"]


def test_hooks_get_the_env_of_the_config(bundle):
    d = hook_dir(bundle)
    h = str(d / "hook.sh")
    bundle.config["hooks"] = {k: [{"path": h, "args": ["hook.sh", k],
                                   "env": ["HOOK_VAR=from-config"]}]
                              for k in ("createRuntime", "createContainer", "startContainer",
                                        "poststart", "poststop")}
    assert bundle.args("true").run().returncode == 0
    got = hook_log(d)
    assert len(got) == 5
    assert all(l[1] == "from-config" for l in got), got


def test_hook_state_follows_the_lifecycle_as_crun(bundle):
    """The spec's "created" is after the environment is made (step 2): the hooks of steps
    3 to 5 see created, as in crun."""
    d = hook_dir(bundle)
    h = str(d / "hook.sh")
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
             "poststop"]
    bundle.config["hooks"] = {k: [{"path": h, "args": ["hook.sh", k]}] for k in kinds}
    assert bundle.args("true").run().returncode == 0
    status = {l[0]: json.loads(l[2])["status"] for l in hook_log(d)}
    assert status == {"prestart": "created", "createRuntime": "created",
                      "createContainer": "created", "startContainer": "created",
                      "poststart": "running", "poststop": "stopped"}


# ---------------------------------------------------------------- the process


def test_home_comes_from_the_rootfs_passwd(bundle, tmp_path):
    rootfs = own_rootfs(bundle, tmp_path)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                           "app:x:1234:1234::/home/app:/bin/sh\n")
    bundle.config["process"]["env"] = ["PATH=/bin"]
    assert out_of(bundle.sh('echo "$HOME"').run()) == "/root\n"
    bundle.config["process"]["user"] = {"uid": 1234, "gid": 1234}
    assert out_of(bundle.sh('echo "$HOME"').run()) == "/home/app\n"
    bundle.config["process"]["user"] = {"uid": 4321, "gid": 4321}
    assert out_of(bundle.sh('echo "$HOME"').run()) == "/\n"
    bundle.config["process"]["env"] = ["PATH=/bin", "HOME=/given"]
    assert out_of(bundle.sh('echo "$HOME"').run()) == "/given\n"


def test_exec_gets_home_too(bundle):
    bundle.config["process"]["env"] = ["PATH=/bin"]
    cid, r = bundle.args("sleep", "30").create()
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    assert out_of(bundle.cmd("exec", cid, "sh", "-c", 'echo "$HOME"')) == "/root\n"


def test_a_missing_cwd_is_created(bundle):
    bundle.config["process"]["cwd"] = "/made/by/vessel"
    assert out_of(bundle.sh("pwd").run()) == "/made/by/vessel\n"


def test_an_exec_has_its_own_process_group(bundle):
    cid, r = bundle.args("sleep", "30").create()
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    # field 5 of /proc/self/stat is the pgid; a process group leader has pgid == pid
    stat = out_of(bundle.cmd("exec", cid, "cat", "/proc/self/stat")).split()
    assert stat[4] != "0" and stat[4] == stat[0], stat[:8]


def test_sysctl_hostname_and_domainname(bundle):
    bundle.config["linux"]["sysctl"] = {"kernel.hostname": "from-sysctl",
                                        "kernel.domainname": "dom.example"}
    out = out_of(bundle.sh("hostname; cat /proc/sys/kernel/domainname").run())
    assert out == "from-sysctl\ndom.example\n"


# ---------------------------------------------------------------- mounts


def test_tmpfs_takes_the_mode_of_the_directory_it_covers(bundle, tmp_path):
    rootfs = own_rootfs(bundle, tmp_path)
    (rootfs / "covered").mkdir()
    os.chmod(rootfs / "covered", 0o710)
    bundle.config["mounts"] += [
        {"destination": "/covered", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/given", "type": "tmpfs", "source": "tmpfs",
         "options": ["mode=1777"]}]
    out = out_of(bundle.sh("stat -c %a /covered /given").run())
    assert out == "710\n1777\n"


def test_rbind_then_bind_stays_recursive(bundle, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    from conftest import run
    assert run(["mount", "-t", "tmpfs", "tmpfs", str(src / "sub")]).returncode == 0
    try:
        (src / "sub" / "deep").write_text("under\n")
        bundle.config["mounts"].append({"destination": "/mnt/r", "type": "bind",
                                        "source": str(src), "options": ["rbind", "bind"]})
        assert out_of(bundle.args("cat", "/mnt/r/sub/deep").run()) == "under\n"
    finally:
        run(["umount", "-l", str(src / "sub")])


def test_a_device_path_with_a_trailing_slash(bundle):
    bundle.config["linux"]["devices"] = [{"path": "/dev/mynull/", "type": "c", "major": 1,
                                          "minor": 3, "fileMode": 0o666}]
    out = out_of(bundle.sh("stat -c '%F %t:%T' /dev/mynull").run())
    assert out == "character special file 1:3\n"


@pytest.mark.parametrize("prop", ["unbindable", "runbindable"])
def test_rootfs_propagation_unbindable(bundle, prop):
    bundle.config["linux"]["rootfsPropagation"] = prop
    out = out_of(bundle.args("cat", "/proc/self/mountinfo").run())
    root = [l for l in out.splitlines() if l.split()[4] == "/"]
    assert root and "unbindable" in root[0], root


def test_a_mount_with_propagation_unbindable(bundle, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    bundle.config["mounts"].append({"destination": "/mnt/u", "type": "bind",
                                    "source": str(src), "options": ["rbind", "unbindable"]})
    out = out_of(bundle.args("cat", "/proc/self/mountinfo").run())
    mnt = [l for l in out.splitlines() if l.split()[4] == "/mnt/u"]
    assert mnt and "unbindable" in mnt[0], mnt


# ---------------------------------------------------------------- namespaces


def without_mount_ns(bundle):
    lx = bundle.config["linux"]
    lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "mount"]
    bundle.config["mounts"] = []
    lx.pop("maskedPaths", None)
    lx.pop("readonlyPaths", None)
    bundle.config["root"]["readonly"] = False


def test_no_mount_namespace_runs_in_the_runtimes(bundle, tmp_path):
    """The spec: an unlisted namespace is inherited from the runtime; the rootfs is then
    the container's by chroot only (runc and crun run this)."""
    without_mount_ns(bundle)
    marker = pathlib.Path(bundle.config["root"]["path"]) / "etc" / "hostname"
    mine = os.readlink("/proc/self/ns/mnt")
    out = out_of(bundle.sh("cat /etc/hostname; ls /bin/busybox").run())
    assert out == marker.read_text() + "/bin/busybox\n"
    cid, r = bundle.args("sleep", "30").create()
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    pid = json.loads(bundle.cmd("state", cid).stdout)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/mnt") == mine
    assert os.readlink(f"/proc/{pid}/root") == bundle.config["root"]["path"]
    assert out_of(bundle.cmd("exec", cid, "ls", "/bin/busybox")) == "/bin/busybox\n"


def test_no_mount_namespace_refuses_what_needs_one(bundle):
    without_mount_ns(bundle)
    bundle.config["mounts"] = [{"destination": "/proc", "type": "proc", "source": "proc"}]
    r = bundle.args("true").run()
    assert r.returncode != 0
    assert "mounts: needs a mount namespace" in r.stderr, r.stderr


def test_a_dangling_symlink_destination_is_created_where_it_points(bundle, tmp_path):
    rootfs = own_rootfs(bundle, tmp_path)
    os.symlink("/target/abs", rootfs / "abs")
    (rootfs / "d").mkdir()
    os.symlink("../rel/made", rootfs / "d" / "rel")
    bundle.config["mounts"] += [
        {"destination": "/abs", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/d/rel/deeper", "type": "tmpfs", "source": "tmpfs"}]
    out = out_of(bundle.args("cat", "/proc/self/mountinfo").run())
    points = {l.split()[4] for l in out.splitlines()}
    assert "/target/abs" in points and "/rel/made/deeper" in points, points
    # resolved inside the rootfs, never on the host
    assert not os.path.exists("/target/abs") and not os.path.exists("/rel/made")


def in_a_user_namespace(bundle):
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000,
                                              "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000,
                                              "size": 65536}]


def test_a_bind_source_only_the_host_root_reaches(bundle, tmp_path):
    """The container's root is an unmapped host uid: a source under a 0700 host-root
    directory is opened by the runtime before the init enters its user namespace."""
    in_a_user_namespace(bundle)
    # the container's root may not write the host root's rootfs: the mount point exists
    (own_rootfs(bundle, tmp_path) / "mnt" / "data").mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "secret"
    (secret / "data").mkdir(parents=True)
    (secret / "data" / "file").write_text("reached\n")
    os.chmod(secret / "data", 0o755)
    os.chmod(secret / "data" / "file", 0o644)
    os.chmod(secret, 0o700)
    bundle.config["mounts"].append({"destination": "/mnt/data", "type": "bind",
                                    "source": str(secret / "data"), "options": ["rbind", "ro"]})
    out = out_of(bundle.sh("cat /mnt/data/file; cat /proc/self/uid_map").run())
    assert out.splitlines()[0] == "reached"
    assert out.split()[1:4] == ["0", "100000", "65536"]


# ---------------------------------------------------------------- resources

CPU_V1 = "/sys/fs/cgroup/cpu"


@pytest.mark.skipif(not os.path.exists(f"{CPU_V1}/cpu.rt_runtime_us"),
                    reason="needs the cgroup v1 cpu controller with RT group scheduling")
def test_realtime_runtime_gets_a_budget_from_fresh_parents(bundle):
    """A fresh parent cgroup has an RT budget of 0: runc gives it what the child needs."""
    import uuid
    parent = f"vessel-compat-rt-{uuid.uuid4().hex[:8]}"
    bundle.config["linux"]["cgroupsPath"] = f"/{parent}/mid/ctr"
    bundle.config["linux"]["resources"] = {"cpu": {"realtimeRuntime": 20000,
                                                   "realtimePeriod": 1000000}}
    try:
        out = out_of(bundle.sh("cat /sys/fs/cgroup/cpu/cpu.rt_runtime_us").run())
        assert out == "20000\n"
    finally:
        for d in (f"{parent}/mid/ctr", f"{parent}/mid", parent):
            if os.path.isdir(f"{CPU_V1}/{d}"):
                os.rmdir(f"{CPU_V1}/{d}")


# ---------------------------------------------------------------- runtime-spec 1.2


def stat_fields(text):
    """/proc/PID/stat split after the command (which may hold spaces): [0] is field 3."""
    return text[text.rindex(")") + 2:].split()


def test_process_scheduler_is_applied(bundle):
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    f = stat_fields(out_of(bundle.args("cat", "/proc/self/stat").run()))
    assert (f[19 - 3], f[41 - 3]) == ("7", "3")  # nice, policy (SCHED_BATCH)


def test_process_scheduler_on_exec(bundle):
    cid, r = bundle.args("sleep", "30").create()
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    proc = dict(bundle.config["process"], args=["cat", "/proc/self/stat"],
                scheduler={"policy": "SCHED_IDLE"})
    (bundle.path / "proc.json").write_text(json.dumps(proc))
    f = stat_fields(out_of(bundle.cmd("exec", "--process", str(bundle.path / "proc.json"),
                                      cid)))
    assert f[41 - 3] == "5"  # SCHED_IDLE


def test_process_scheduler_is_validated(bundle):
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_FIFO"}
    r = bundle.args("true").run()
    assert r.returncode != 0 and "process.scheduler.priority" in r.stderr, r.stderr
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_NOPE"}
    r = bundle.args("true").run()
    assert r.returncode != 0 and "process.scheduler.policy" in r.stderr, r.stderr


def test_process_io_priority_is_applied(bundle):
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    assert "idle" in out_of(bundle.args("ionice").run())
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    assert out_of(bundle.args("ionice").run()) == "best-effort: prio 6\n"


def test_memory_policy_is_applied(bundle):
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    out = out_of(bundle.args("cat", "/proc/self/numa_maps").run())
    assert " bind:0 " in out, out[:500]
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0-"}
    r = bundle.args("true").run()
    assert r.returncode != 0 and "linux.memoryPolicy.nodes" in r.stderr, r.stderr


def mounted_cgroup_v1(ctrl):
    with open("/proc/self/mountinfo") as f:
        return any(" - cgroup " in l and ctrl in l.split()[-1].split(",") for l in f)


def test_network_resources_are_applied_or_refused(bundle):
    bundle.config["linux"]["resources"] = {"network": {"classID": 1048577}}
    r = bundle.args("cat", "/sys/fs/cgroup/net_cls/net_cls.classid").run()
    if mounted_cgroup_v1("net_cls"):
        assert out_of(r) == "1048577\n"
    else:
        assert r.returncode != 0
        assert ("linux.resources.network.classID: the net_cls cgroup controller is not "
                "available") in r.stderr, r.stderr


def test_intel_rdt_is_refused_where_there_is_no_resctrl(bundle):
    bundle.config["linux"]["intelRdt"] = {"closID": "vessel-test", "l3CacheSchema": "L3:0=f"}
    r = bundle.args("true").run()
    assert r.returncode != 0
    if not os.path.exists("/sys/fs/resctrl/info"):
        assert "linux.intelRdt: this host has no resctrl filesystem" in r.stderr, r.stderr
    else:
        assert "linux.intelRdt" in r.stderr, r.stderr


def test_net_devices_are_moved_into_the_container_and_renamed(bundle):
    import uuid
    from conftest import run
    host = "vsd" + uuid.uuid4().hex[:8]
    r = run(["ip", "link", "add", host, "type", "veth", "peer", "name", host + "p"])
    assert r.returncode == 0, r.stderr
    try:
        bundle.config["linux"]["netDevices"] = {host: {"name": "ctr0"}}
        cid, r = bundle.args("sleep", "30").create()
        assert r.returncode == 0, r.stderr
        out = out_of(bundle.cmd("exec", cid, "cat", "/proc/net/dev"))
        assert "ctr0:" in out and host + ":" not in out, out
        assert run(["ip", "link", "show", host]).returncode != 0  # gone from the host
        assert run(["ip", "link", "show", host + "p"]).returncode == 0
    finally:
        run(["ip", "link", "del", host + "p"])


def test_net_devices_need_a_network_namespace_and_a_real_device(bundle):
    lx = bundle.config["linux"]
    lx["netDevices"] = {"vessel-nope0": {}}
    r = bundle.args("true").run()
    assert r.returncode != 0
    assert "linux.netDevices.vessel-nope0: no such interface on the host" in r.stderr
    lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "network"]
    r = bundle.args("true").run()
    assert r.returncode != 0 and "linux.netDevices: needs a network namespace" in r.stderr


def idmapped_source(tmp_path):
    src = tmp_path / "idsrc"
    src.mkdir()
    (src / "f").write_text("x")
    os.chown(src / "f", 0, 0)
    os.chmod(src, 0o755)
    return src


def test_an_idmapped_mount_shows_the_mapped_owner(bundle, tmp_path):
    src = idmapped_source(tmp_path)
    bundle.config["mounts"].append({
        "destination": "/mnt/id", "type": "bind", "source": str(src), "options": ["bind"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]})
    assert out_of(bundle.args("stat", "-c", "%u:%g", "/mnt/id/f").run()) == "1000:2000\n"
    assert os.stat(src / "f").st_uid == 0  # the files themselves are untouched


def test_idmap_option_takes_the_containers_mappings(bundle, tmp_path):
    in_a_user_namespace(bundle)
    (own_rootfs(bundle, tmp_path) / "mnt" / "id").mkdir(parents=True, exist_ok=True)
    src = idmapped_source(tmp_path)
    bundle.config["mounts"] += [
        {"destination": "/mnt/id", "type": "bind", "source": str(src),
         "options": ["rbind", "idmap"]}]
    # host root's file, seen through the container's own mapping, is the container's root's
    assert out_of(bundle.args("stat", "-c", "%u:%g", "/mnt/id/f").run()) == "0:0\n"


# ---------------------------------------------------------------- features


def features(vessel):
    from conftest import run
    return json.loads(out_of(run([vessel, "features"])))


def test_features_tells_the_truth(vessel):
    f = features(vessel)
    lx = f["linux"]
    assert f["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                          "poststart", "poststop"]
    assert lx["mountExtensions"]["idmap"]["enabled"] is True
    assert lx["netDevices"]["enabled"] is True
    assert lx["intelRdt"]["enabled"] is False  # refused, see the test above
    assert "MPOL_BIND" in lx["memoryPolicy"]["modes"]
    assert "rro" in f["mountOptions"] and "tmpcopyup" not in f["mountOptions"]


def test_every_mount_option_features_lists_is_taken(bundle, vessel, tmp_path):
    src = tmp_path / "optsrc"
    src.mkdir()
    skip = {"remount", "idmap", "ridmap"}  # remount needs a mount; idmap is tested above
    opts = [o for o in features(vessel)["mountOptions"] if o not in skip]
    for o in opts:
        bundle.config["mounts"] = bundle.config["mounts"][:7] + [
            {"destination": "/mnt/o", "type": "bind", "source": str(src),
             "options": ["bind", o] if o not in ("bind", "rbind") else [o]}]
        r = bundle.args("true").run()
        assert r.returncode == 0, (o, r.stderr)


def test_recursive_mount_options_reach_submounts(bundle, tmp_path):
    from conftest import run
    src = tmp_path / "rsrc"
    (src / "sub").mkdir(parents=True)
    assert run(["mount", "-t", "tmpfs", "tmpfs", str(src / "sub")]).returncode == 0
    try:
        bundle.config["mounts"].append({"destination": "/mnt/r", "type": "bind",
                                        "source": str(src), "options": ["rbind", "rro"]})
        r = bundle.sh("touch /mnt/r/sub/x").run()
        assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
    finally:
        run(["umount", "-l", str(src / "sub")])


# ---------------------------------------------------------------- seccomp notify


class Listener:
    """A seccomp agent's end of listenerPath: takes one connection, the JSON and the fd."""

    def __init__(self, path):
        import socket
        import threading
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.sock.listen(4)
        self.got = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import socket
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                while True:
                    more = conn.recv(65536)
                    if not more:
                        break
                    msg += more
                # closing the notify fd makes the notified syscalls fail with ENOSYS
                for fd in fds:
                    kind = os.readlink(f"/proc/self/fd/{fd}")
                    os.close(fd)
                    self.got.append((json.loads(msg), kind))

    def close(self):
        self.sock.close()


def notify_profile(listener, *names):
    return {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": listener.path,
            "listenerMetadata": "agent-args",
            "syscalls": [{"names": list(names), "action": "SCMP_ACT_NOTIFY"}]}


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_listener_gets_the_notify_fd_and_the_state(bundle, tmp_path, nnp):
    listener = Listener(tmp_path / "agent.sock")
    try:
        bundle.config["process"]["noNewPrivileges"] = nnp
        bundle.config["linux"]["seccomp"] = notify_profile(listener, "mkdir", "mkdirat")
        cid, r = bundle.args("sleep", "30").create()
        assert r.returncode == 0, r.stderr
        pid = json.loads(bundle.cmd("state", cid).stdout)["pid"]
        deadline = time.time() + 5
        while not listener.got and time.time() < deadline:
            time.sleep(0.02)
        (msg, kind), = listener.got
        assert kind == "anon_inode:seccomp notify", kind
        assert msg["fds"] == ["seccompFd"] and msg["metadata"] == "agent-args"
        assert msg["pid"] == pid and msg["state"]["id"] == cid
        assert msg["state"]["status"] == "creating"
        assert bundle.cmd("start", cid).returncode == 0
        # the agent closed its fd: a notified syscall now fails (ENOSYS), others work
        r = bundle.cmd("exec", cid, "mkdir", "/tmp/x")
        assert r.returncode != 0 and "Function not implemented" in r.stderr, r.stderr
        assert len(listener.got) == 2 and listener.got[1][0]["state"]["status"] == "running"
        assert out_of(bundle.cmd("exec", cid, "echo", "ok")) == "ok\n"
    finally:
        listener.close()


def test_seccomp_notify_needs_a_listener(bundle):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.config["linux"]["seccomp"] = prof
    r = bundle.args("true").run()
    assert r.returncode != 0
    assert "linux.seccomp.listenerPath: is required with SCMP_ACT_NOTIFY" in r.stderr
