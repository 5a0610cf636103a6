"""runc's lifecycle with real busybox containers: create/start/state/kill/delete, run."""
import json
import os
import signal
import subprocess
import time

from conftest import oom_score_floor


def test_run_exit_status_is_the_containers(bundle):
    r = bundle.sh("exit 7").run()
    assert r.returncode == 7, r.stderr


def test_run_killed_container_exits_128_plus_signal(bundle):
    import subprocess
    bundle.args("sleep", "60").write()
    cid = bundle.new_id()
    p = subprocess.Popen([bundle.vessel, "--root", str(bundle.root), "run", "--bundle",
                          str(bundle.path), cid], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            st = bundle.cmd("state", cid)
            if st.returncode == 0 and json.loads(st.stdout)["status"] == "running":
                break
            time.sleep(0.02)
        assert bundle.cmd("kill", cid, "KILL").returncode == 0
        assert p.wait(timeout=10) == 128 + signal.SIGKILL
    finally:
        p.kill()
        p.wait()


def test_run_forwards_signals_to_the_container(bundle):
    import subprocess
    # the container says when its trap is set: an init ignores a signal it has no handler
    # for, so one sent earlier would be lost (not run's doing)
    # as runc's: every signal a process can catch, ALRM and real-time ones too
    bundle.sh("trap 'echo got ALRM' ALRM; trap 'echo got 40' 40; "
              "trap 'echo got TERM; exit 5' TERM; echo ready; "
              "while true; do sleep 0.05; done").write()
    cid = bundle.new_id()
    p = subprocess.Popen([bundle.vessel, "--root", str(bundle.root), "run", "--bundle",
                          str(bundle.path), cid], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGALRM)
        assert p.stdout.readline() == "got ALRM\n"
        p.send_signal(40)
        assert p.stdout.readline() == "got 40\n"
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        assert p.returncode == 5 and "got TERM" in out
    finally:
        p.kill()
        p.wait()


def test_run_holds_a_signal_that_comes_while_it_creates(bundle):
    """As runc's run, vessel's takes signals from its start: one that comes while the
    container is being made (here during a createRuntime hook that sleeps) is forwarded once
    the process runs, instead of killing run and leaving a created container behind."""
    import subprocess
    # no pid namespace: the shell is no init, so the forwarded TERM ends it however early
    lx = bundle.config["linux"]
    lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "pid"]
    bundle.config.setdefault("hooks", {})["createRuntime"] = [
        {"path": "/bin/sleep", "args": ["sleep", "1.5"]}]
    bundle.sh("exec sleep 30").write()
    cid = bundle.new_id()
    p = subprocess.Popen([bundle.vessel, "--root", str(bundle.root), "run", "--bundle",
                          str(bundle.path), cid], stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        assert p.poll() is None, p.stderr.read()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
        assert p.returncode == 128 + signal.SIGTERM, (p.returncode, err)
        r = bundle.cmd("state", cid)
        assert r.returncode != 0 and "does not exist" in r.stderr, (r.returncode, r.stdout)
    finally:
        p.kill()
        p.wait()


def test_container_is_pid_1_with_its_hostname(bundle):
    r = bundle.sh("echo pid=$$; hostname; cat /etc/hostname").run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["pid=1", "vessel", "vessel"]


def test_hostname_and_domainname_from_config(bundle):
    bundle.config["hostname"] = "box-a"
    bundle.config["domainname"] = "example.test"
    r = bundle.sh("hostname; cat /proc/sys/kernel/domainname").run()
    assert r.stdout.split() == ["box-a", "example.test"], r.stderr


def test_mounts_seen_inside(bundle, tmp_path):
    host_dir = tmp_path / "shared"
    host_dir.mkdir()
    (host_dir / "note").write_text("from the host\n")
    bundle.config["mounts"].append({"destination": "/data", "type": "bind",
                                    "source": str(host_dir), "options": ["rbind", "ro"]})
    r = bundle.sh("cat /proc/mounts; cat /data/note; touch /data/x 2>&1; echo rc=$?").run()
    assert r.returncode == 0, r.stderr
    mounts = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) == 6:
            mounts[f[1]] = (f[2], f[3].split(","))
    assert mounts["/proc"][0] == "proc"
    assert mounts["/dev"][0] == "tmpfs"
    assert mounts["/dev/pts"][0] == "devpts"
    assert mounts["/dev/shm"][0] == "tmpfs"
    assert mounts["/dev/mqueue"][0] == "mqueue"
    assert mounts["/sys"][0] == "sysfs" and "ro" in mounts["/sys"][1]
    assert "ro" in mounts["/"][1], "root.readonly is true in the default spec"
    assert "ro" in mounts["/data"][1]
    assert "from the host" in r.stdout
    assert "Read-only file system" in r.stdout and "rc=1" in r.stdout


def test_default_devices_and_links(bundle):
    r = bundle.sh("ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; "
                  "readlink /dev/fd; readlink /dev/ptmx; head -c 4 /dev/zero | wc -c; echo x > /dev/null"
                  ).run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("crw-rw-rw-") == 6
    assert "/proc/self/fd" in r.stdout and "pts/ptmx" in r.stdout
    assert "\n4\n" in r.stdout


def test_create_start_state_kill_delete(bundle):
    bundle.args("sleep", "60")
    cid, r = bundle.create("--pid-file", str(bundle.path / "pid"))
    assert r.returncode == 0, r.stderr
    pid = int((bundle.path / "pid").read_text())
    st = json.loads(bundle.cmd("state", cid).stdout)
    assert st["status"] == "created" and st["pid"] == pid and st["id"] == cid
    assert st["bundle"] == str(bundle.path) and st["ociVersion"].startswith("1.")
    # created means the user's program has not started yet
    assert os.readlink(f"/proc/{pid}/exe") != "/bin/busybox"
    assert bundle.cmd("start", cid).returncode == 0
    st = json.loads(bundle.cmd("state", cid).stdout)
    assert st["status"] == "running"
    assert "sleep" in open(f"/proc/{pid}/cmdline").read()
    # an init with no handler ignores TERM (pid 1 semantics): KILL always works
    assert bundle.cmd("kill", cid, "KILL").returncode == 0
    deadline = time.time() + 5
    while time.time() < deadline:
        if json.loads(bundle.cmd("state", cid).stdout)["status"] == "stopped":
            break
        time.sleep(0.02)
    assert json.loads(bundle.cmd("state", cid).stdout)["status"] == "stopped"
    r = bundle.cmd("delete", cid)
    assert r.returncode == 0, r.stderr
    r = bundle.cmd("state", cid)
    assert r.returncode != 0 and "does not exist" in r.stderr


def test_delete_refuses_running_without_force(bundle):
    bundle.args("sleep", "60")
    cid, r = bundle.create()
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    r = bundle.cmd("delete", cid)
    assert r.returncode != 0 and "not stopped" in r.stderr
    assert bundle.cmd("delete", "--force", cid).returncode == 0
    assert "does not exist" in bundle.cmd("state", cid).stderr


def test_delete_of_created_container_kills_its_init(bundle):
    bundle.args("true")
    cid, r = bundle.create("--pid-file", str(bundle.path / "pid"))
    assert r.returncode == 0, r.stderr
    pid = int((bundle.path / "pid").read_text())
    assert bundle.cmd("delete", cid).returncode == 0
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]


def test_kill_takes_names_and_numbers(bundle):
    bundle.sh("trap 'echo got USR1 >&2; exit 11' USR1; while true; do sleep 0.05; done")
    cid, r = bundle.create("--pid-file", str(bundle.path / "pid"))
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    time.sleep(0.2)
    assert bundle.cmd("kill", cid, "SIGUSR1").returncode == 0
    pid = int((bundle.path / "pid").read_text())
    deadline = time.time() + 5
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.02)
    r = bundle.cmd("kill", cid, "9")
    assert r.returncode != 0 and "container not running" in r.stderr
    assert bundle.cmd("kill", "--all", cid, "KILL").returncode != 0
    r = bundle.cmd("kill", cid, "SIGNOPE")
    assert r.returncode != 0 and "invalid signal" in r.stderr


def test_run_detach_then_delete(bundle):
    bundle.args("sleep", "60")
    r = bundle.run("--detach", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   capture_output=False)
    assert r.returncode == 0
    cid = bundle.ids[-1]
    assert json.loads(bundle.cmd("state", cid).stdout)["status"] == "running"
    assert bundle.cmd("delete", "--force", cid).returncode == 0


def test_list_table_and_json(bundle):
    bundle.args("sleep", "60")
    cid, r = bundle.create()
    assert r.returncode == 0
    table = bundle.cmd("list").stdout
    assert table.splitlines()[0].split()[:3] == ["ID", "PID", "STATUS"]
    assert any(line.split()[0] == cid and "created" in line for line in table.splitlines()[1:])
    js = json.loads(bundle.cmd("list", "--format", "json").stdout)
    assert [c["status"] for c in js if c["id"] == cid] == ["created"]
    assert bundle.cmd("list", "-q").stdout.split() == [cid]


def test_process_env_cwd_user_rlimits(bundle):
    p = bundle.config["process"]
    p["env"] = ["PATH=/bin", "GREETING=hi there"]
    p["cwd"] = "/tmp"
    p["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 0o077}
    p["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]
    r = bundle.sh('echo "$GREETING"; pwd; id -u; id -g; id -G; ulimit -n; ulimit -Hn; umask').run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hi there", "/tmp", "1000", "1000", "1000 2000 3000",
                                     "321", "654", "0077"]


def test_oom_score_adj_raised(bundle):
    bundle.config["process"]["oomScoreAdj"] = 500
    r = bundle.sh("cat /proc/self/oom_score_adj").run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "500"
    assert "oomScoreAdj" not in r.stderr


def test_oom_score_adj_lowered_as_far_as_the_kernel_allows(bundle):
    """A pod sandbox asks for -998. Where lowering needs CAP_SYS_RESOURCE and root lacks it
    (this build machine), the container still starts, at the lowest value the kernel
    accepts, with one warning; where root has it, at -998 exactly."""
    bundle.config["process"]["oomScoreAdj"] = -998
    expected = oom_score_floor(-998)
    r = bundle.sh("cat /proc/self/oom_score_adj").run()
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == expected
    if expected == -998:
        assert "oomScoreAdj" not in r.stderr
    else:
        assert (f"process.oomScoreAdj: -998 refused (lowering it needs CAP_SYS_RESOURCE): "
                f"the container runs at {expected}") in r.stderr, r.stderr


def test_args_are_looked_up_in_the_containers_path(bundle):
    bundle.config["process"]["env"] = ["PATH=/usr/bin:/bin"]
    r = bundle.args("echo", "found").run()
    assert r.stdout == "found\n", r.stderr
    r = bundle.args("no-such-program").run()
    assert r.returncode != 0
    assert "no-such-program" in r.stderr and "not found" in r.stderr


def test_no_pivot(bundle):
    r = bundle.sh("cat /proc/self/mountinfo | wc -l; ls /bin/busybox").run("--no-pivot")
    assert r.returncode == 0, r.stderr
    assert "/bin/busybox" in r.stdout


def test_masked_and_readonly_paths(bundle):
    # files are covered by /dev/null, directories by an empty read-only tmpfs
    assert os.path.getsize("/proc/keys") or open("/proc/keys").read()
    assert os.listdir("/sys/firmware")
    r = bundle.sh("wc -c < /proc/keys; ls /sys/firmware | wc -l; touch /sys/firmware/x; "
                  "echo 1 > /proc/sys/kernel/domainname; echo rc=$?").run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", "rc=1"]
    assert "Read-only file system" in r.stderr


def test_sysctl_in_the_containers_namespaces(bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
    r = bundle.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni").run()
    assert r.stdout.split() == ["1", "1234"], r.stderr
    assert open("/proc/sys/kernel/shmmni").read().strip() != "1234"


def test_linux_devices_are_created(bundle):
    bundle.config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10,
                                          "minor": 229, "fileMode": 0o600, "uid": 0, "gid": 0}]
    r = bundle.sh("ls -l /dev/fuse").run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("crw-------") and "10, 229" in r.stdout


def test_time_namespace_offsets(bundle):
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 40000000, "nanosecs": 0}}
    r = bundle.sh("cut -d' ' -f1 /proc/uptime").run()
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) > 40000000


def test_join_another_containers_network_namespace(bundle):
    bundle.args("sleep", "60")
    cid, r = bundle.create("--pid-file", str(bundle.path / "pid"))
    assert r.returncode == 0, r.stderr
    pid = int((bundle.path / "pid").read_text())
    want = os.readlink(f"/proc/{pid}/ns/net")
    for ns in bundle.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{pid}/ns/net"
    r = bundle.args("readlink", "/proc/self/ns/net").run()
    assert r.stdout.strip() == want, r.stderr


def test_user_namespace_mappings(bundle):
    lx = bundle.config["linux"]
    lx["namespaces"].append({"type": "user"})
    lx["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    lx["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    r = bundle.sh("id -u; cat /proc/self/uid_map /proc/self/gid_map; "
                  "stat -c %u /bin/busybox; echo x > /dev/null && echo devnull-ok").run()
    assert r.returncode == 0, r.stderr
    lines = [l.split() for l in r.stdout.splitlines()]
    assert lines[0] == ["0"]
    assert lines[1] == ["0", "100000", "65536"]
    assert lines[2] == ["0", "100000", "65536"]
    # the rootfs belongs to host root, which is not mapped: it shows as the overflow id
    assert lines[3] == ["65534"]
    assert lines[4] == ["devnull-ok"]


def test_create_start_as_a_non_root_user(bundle):
    """The init drops to the container user before it opens the exec fifo (podman --user,
    Kubernetes runAsUser): the fifo must stay writable for it."""
    bundle.config["process"]["user"] = {"uid": 65534, "gid": 65534}
    bundle.sh("id -u > /dev/null; exit 5")
    cid, r = bundle.create("--pid-file", str(bundle.path / "pid"))
    assert r.returncode == 0, r.stderr
    assert json.loads(bundle.cmd("state", cid).stdout)["status"] == "created", r.stderr
    r = bundle.cmd("start", cid)
    assert r.returncode == 0, r.stderr


def test_device_file_mode_with_type_bits(bundle):
    bundle.config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10,
                                          "minor": 229, "fileMode": 0o20600}]
    r = bundle.sh("ls -l /dev/fuse").run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("crw-------")
