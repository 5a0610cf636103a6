"""podman (Debian's, with conmon and netavark) driving vessel through `--runtime`.

One podman per module: a private storage root, containers.conf and network namespace
(clients.py), a local busybox image made with `podman import` (no registry is reachable).
"""
import os
import re
import stat
import time

import pytest

from conftest import run
from clients import (COUNTER, NetNS, Podman, assert_frozen_then_running, busybox_rootfs,
                     memory_limit, run_in_pty, wait_for)

IMAGE = "localhost/vessel-busybox:test"
MiB = 1 << 20


@pytest.fixture(scope="module")
def podman(vessel, tmp_path_factory):
    rootfs = busybox_rootfs(tmp_path_factory.mktemp("podman-rootfs"), vessel)
    netns = NetNS()
    p = None
    try:
        p = Podman(vessel, netns)
        p.import_image(rootfs, IMAGE)
        yield p
    finally:
        problems = p.cleanup() if p else []
        netns.delete()
        assert not problems, f"podman left things behind: {problems}"


@pytest.fixture
def names(podman):
    """Container names for one test; each is removed afterwards whatever happened."""
    made = []

    def new(prefix="vt"):
        made.append(f"{prefix}-{len(made)}-{int(time.time() * 1000) % 10**8}")
        return made[-1]

    yield new
    for name in made:
        podman("rm", "--force", "--time", "0", "--ignore", name, timeout=60)


def run_rm(podman, *args, timeout=60):
    return podman("run", "--rm", "--network", "none", *args, timeout=timeout)


def cgroup_file(v1, v2):
    """A shell expression reading a cgroup file inside the container, v1 or v2."""
    return f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}"


def test_run_rm_gives_output_and_exit_status_and_leaves_nothing(podman, names):
    name = names()
    r = run_rm(podman, "--name", name, IMAGE, "/bin/sh", "-c",
               "echo hello from $(hostname); echo pid=$$; exit 3")
    assert r.returncode == 3, r.stderr
    assert "hello from" in r.stdout and "pid=1" in r.stdout.split()
    assert name not in podman.ok("ps", "--all", "--format", "{{.Names}}").split()


def test_podman_uses_vessel_as_the_runtime(podman, names):
    name = names()
    podman.ok("create", "--network", "none", "--name", name, IMAGE, "/bin/true")
    assert podman.inspect(name, "{{.OCIRuntime}}") == podman.vessel


def test_detached_container_logs_top_ps_stop_rm(podman, names):
    name = names()
    podman.ok("run", "-d", "--network", "none", "--name", name, IMAGE, "/bin/sh", "-c",
              "echo started; trap 'echo got TERM; exit 0' TERM; "
              "while true; do sleep 0.1; done")
    wait_for(lambda: "started" in podman.ok("logs", name), what="the container's first line")

    ps = podman.ok("ps", "--filter", f"name=^{name}$", "--format", "{{.Names}} {{.Status}}")
    assert ps.split()[:2] == [name, "Up"], ps
    top = podman.ok("top", name, "pid", "args")
    rows = [line.split(None, 1) for line in top.splitlines()[1:]]
    assert ["1", "/bin/sh -c echo started; trap 'echo got TERM; exit 0' TERM; while true; "
            "do sleep 0.1; done"] in [[r[0], r[1].strip()] for r in rows], top
    assert podman.inspect(name, "{{.State.Status}}") == "running"

    podman.ok("stop", "--time", "10", name, timeout=30)
    assert podman.inspect(name, "{{.State.Status}}") == "exited"
    # the trap ran: SIGTERM reached the container's init and it exited on its own
    assert podman.inspect(name, "{{.State.ExitCode}}") == "0"
    assert podman.ok("logs", name).split("\n")[:2] == ["started", "got TERM"]
    podman.ok("rm", name)
    assert name not in podman.ok("ps", "--all", "--format", "{{.Names}}").split()


def test_exec_in_a_running_container(podman, names):
    name = names()
    podman.ok("run", "-d", "--network", "none", "--name", name, IMAGE, "sleep", "300")
    r = podman("exec", name, "/bin/sh", "-c",
               "echo in=$(cat /proc/1/cmdline | tr '\\0' ' '); exit 4")
    assert r.returncode == 4, r.stderr
    assert r.stdout.strip() == "in=sleep 300"
    r = podman("exec", "--env", "GREETING=hi", "--workdir", "/tmp", "--user", "65534",
               name, "/bin/sh", "-c", "echo $GREETING $(pwd) $(id -u)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["hi", "/tmp", "65534"]
    # the exec'd process is inside the container's pid namespace, beside pid 1
    pids = podman.ok("exec", name, "ps", "-o", "pid,args")
    assert "sleep 300" in pids and "ps -o pid,args" in pids


def test_run_interactive_with_a_terminal(podman, names):
    status, out = run_in_pty(podman.argv("run", "-it", "--rm", "--network", "none", "--name",
                                         names(), IMAGE, "/bin/sh"),
                             "tty; echo answer=$((6 * 7)); exit 5\r", timeout=60,
                             env=podman.env, cwd=podman.work)
    assert status == 5, out
    assert "/dev/pts/0" in out and "answer=42" in out, out


def test_exec_interactive_with_a_terminal(podman, names):
    name = names()
    podman.ok("run", "-d", "--network", "none", "--name", name, IMAGE, "sleep", "300")
    status, out = run_in_pty(podman.argv("exec", "-it", name, "/bin/sh"),
                             "tty; echo answer=$((6 * 7)); exit 6\r", timeout=60,
                             env=podman.env, cwd=podman.work)
    assert status == 6, out
    assert "/dev/pts/" in out and "answer=42" in out, out


def test_run_as_a_non_root_user(podman):
    # create + start, as every client does: the init must reach start as that user
    r = run_rm(podman, "--user", "65534:65534", IMAGE, "/bin/sh", "-c", "id -u; id -g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["65534", "65534"]


def test_device_from_the_host(podman):
    """podman writes the host's st_mode as the device's fileMode (type bits included)."""
    st = os.stat("/dev/fuse")
    r = run_rm(podman, "--device", "/dev/fuse", IMAGE, "stat", "-c", "%F %t:%T %a",
               "/dev/fuse")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["character", "special", "file",
                                f"{os.major(st.st_rdev):x}:{os.minor(st.st_rdev):x}",
                                f"{stat.S_IMODE(st.st_mode):o}"]


def test_privileged_has_every_capability_and_the_hosts_devices(podman):
    with open("/proc/self/status") as f:
        bounding = re.search(r"^CapBnd:\s+(\w+)$", f.read(), re.M).group(1)
    r = run_rm(podman, "--privileged", IMAGE, "/bin/sh", "-c",
               "grep CapEff /proc/self/status; ls /dev/fuse")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["CapEff:", bounding, "/dev/fuse"]


def test_memory_limit_is_set_and_enforced(podman):
    script = (cgroup_file("memory/memory.limit_in_bytes", "memory.max") + "; "
              # a child that keeps every byte of /dev/zero, until the kernel kills it
              "tail /dev/zero; echo status=$?; "
              "cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events "
              "2>/dev/null | grep oom_kill")
    r = run_rm(podman, "--memory", "32m", "--memory-swap", "32m", IMAGE, "/bin/sh", "-c",
               script)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == str(32 * MiB), r.stdout
    assert "status=137" in lines, r.stdout  # SIGKILL
    oom_kills = [int(line.split()[-1]) for line in lines if line.startswith("oom_kill ")]
    assert oom_kills and oom_kills[0] >= 1, r.stdout


def test_pids_limit_is_set_and_enforced(podman):
    # a child shell forks sleeps until the limit stops it (ash exits on a failed fork);
    # the parent then reads pids.current with builtins only, as every pid is taken
    script = (cgroup_file("pids/pids.max", "pids.max") + "; "
              "sh -c 'for i in $(seq 40); do sleep 5 & done'; echo child=$?; "
              "read n < /sys/fs/cgroup/pids/pids.current || read n < /sys/fs/cgroup/pids.current; "
              "echo current=$n")
    r = run_rm(podman, "--pids-limit", "16", IMAGE, "/bin/sh", "-c", script)
    assert r.returncode == 0, r.stderr
    limit, child, current = r.stdout.split()
    assert limit == "16"
    assert child == "child=2" and "can't fork" in r.stderr, r.stdout + r.stderr
    # this shell and the sleeps that fit: the child that hit the limit is gone
    assert 12 <= int(current.split("=")[1]) <= 16, r.stdout


def test_pause_and_unpause(podman, names):
    name = names()
    podman.ok("run", "-d", "--network", "none", "--name", name, IMAGE, "/bin/sh", "-c",
              COUNTER)
    pid = podman.inspect(name, "{{.State.Pid}}")

    def pause():
        podman.ok("pause", name)
        assert podman.inspect(name, "{{.State.Status}}") == "paused"

    def unpause():
        podman.ok("unpause", name)
        assert podman.inspect(name, "{{.State.Status}}") == "running"

    assert_frozen_then_running(pid, pause, unpause)


def test_update_changes_the_memory_limit(podman, names):
    name = names()
    podman.ok("run", "-d", "--network", "none", "--memory", "32m", "--name", name, IMAGE,
              "sleep", "300")
    pid = podman.inspect(name, "{{.State.Pid}}")
    assert memory_limit(pid) == str(32 * MiB)
    podman.ok("update", "--memory", "64m", "--memory-swap", "64m", name)
    # read from the cgroup: podman 4.3's inspect keeps showing the limit it started with
    assert memory_limit(pid) == str(64 * MiB)


def test_joins_another_containers_namespaces(podman, names):
    """What a Kubernetes pod does: containers join the sandbox's network, IPC, UTS (and
    here pid) namespaces by path (/proc/PID/ns/*) in config.json."""
    sandbox = names()
    podman.ok("run", "-d", "--network", "none", "--hostname", "sandbox", "--name", sandbox,
              IMAGE, "sleep", "300")
    pid = podman.inspect(sandbox, "{{.State.Pid}}")
    kinds = ("net", "ipc", "uts", "pid")
    joined = [f"--{k if k != 'net' else 'network'}=container:{sandbox}" for k in kinds]
    r = podman("run", "--rm", *joined, IMAGE, "/bin/sh", "-c",
               "hostname; for k in " + " ".join(kinds) + "; do readlink /proc/self/ns/$k; done; "
               "ps -o args | grep -x 'sleep 300'")
    assert r.returncode == 0, r.stderr
    want = ["sandbox", *[os.readlink(f"/proc/{pid}/ns/{k}") for k in kinds], "sleep", "300"]
    assert r.stdout.split() == want


def test_network_none_has_only_loopback(podman):
    r = run_rm(podman, IMAGE, "/bin/sh", "-c", "ls /sys/class/net")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["lo"]


def test_default_network_reaches_the_host_and_serves(podman, names):
    """podman's default network: netavark's bridge (10.88.0.0/16) in the test's own
    network namespace. The container reaches its gateway, and a server in it is reached
    from the namespace's host side."""
    r = podman("run", "--rm", IMAGE, "/bin/sh", "-c",
               "ip -4 -o addr show eth0; gw=$(ip route | awk '/^default/ {print $3}'); "
               "ping -c 1 -W 5 $gw >/dev/null && echo reached $gw")
    assert r.returncode == 0, r.stderr + r.stdout
    assert " inet 10.88." in r.stdout and "reached 10.88.0.1" in r.stdout, r.stdout

    name = names()
    podman.ok("run", "-d", "--name", name, IMAGE, "/bin/sh", "-c",
              "mkdir /www && echo served by $(hostname) > /www/index.html && "
              "exec httpd -f -p 8080 -h /www")
    ip = podman.inspect(name, "{{.NetworkSettings.IPAddress}}")
    assert ip.startswith("10.88."), ip
    hostname = podman.inspect(name, "{{.Config.Hostname}}")
    # python, not busybox wget: the static busybox's wget crashes on this host
    fetch = podman.netns.enter(
        "/usr/bin/python3", "-c", "import sys, urllib.request as u; "
        "print(u.urlopen(sys.argv[1], timeout=5).read().decode(), end='')",
        f"http://{ip}:8080/")

    def fetched():
        out = run(fetch, timeout=15)
        return out.returncode == 0 and out.stdout

    body = wait_for(fetched, timeout=15, interval=0.2, what=f"httpd at {ip}:8080")
    assert body.strip() == f"served by {hostname}"
