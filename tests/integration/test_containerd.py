"""containerd (Debian's, with its io.containerd.runc.v2 shim) driving vessel through
`ctr run --runc-binary`.

One containerd per module, started here with its own root, state and socket and the CRI
plugin disabled (clients/containerd.toml, the file docs/kubernetes.md shows); the image is
an OCI layout tarball made from the busybox rootfs and loaded with `ctr image import`.
"""
import os
import re

import pytest

from clients import (COUNTER, TEMPLATES, assert_frozen_then_running, cgroup_dir, container_ids,
                     containerd_with_images, run_in_pty, wait_for)
from conftest import ROOT, run

IMAGE = "docker.io/library/vessel-busybox:test"
NOBODY_IMAGE = "docker.io/library/vessel-busybox:nobody"  # USER 65534:65534
MiB = 1 << 20


@pytest.fixture(scope="module")
def containerd(vessel, tmp_path_factory):
    images = {IMAGE: {}, NOBODY_IMAGE: {"user": "65534:65534"}}
    with containerd_with_images(vessel, tmp_path_factory.mktemp("containerd-image"),
                                images) as daemon:
        yield daemon


@pytest.fixture
def ids(containerd):
    yield from container_ids(containerd)


def test_containerd_config_names_vessel_for_the_cri_runtime(containerd, tmp_path):
    """The runtime entry docs/kubernetes.md tells a node to use, as containerd reads it:
    the test's own config with the CRI plugin enabled, as on a node."""
    text = containerd.config.read_text()
    node_config = tmp_path / "node.toml"
    node_config.write_text(re.sub(r"(?m)^disabled_plugins = .*$", "", text))
    r = run(["containerd", "--config", str(node_config), "config", "dump"], timeout=30)
    assert r.returncode == 0, r.stderr
    entry = r.stdout.split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vessel]')
    assert len(entry) == 2, r.stdout
    table, options = entry[1].split("\n\n")[:2]
    assert 'runtime_type = "io.containerd.runc.v2"' in table
    assert 'runtimes.vessel.options]' in options
    assert f'BinaryName = "{containerd.vessel}"' in options


def test_docs_show_the_tests_containerd_config():
    """docs/kubernetes.md shows this test's containerd config and its runtime entry as they
    are, with vessel's path for a node."""
    template = (TEMPLATES / "containerd.toml").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / "kubernetes.md").read_text(),
                        re.S)
    without_comments = "".join(line + "\n" for line in template.splitlines()
                               if not line.startswith("#"))
    assert without_comments in blocks
    entry = template[template.index('[plugins."io.containerd.grpc.v1.cri"'):]
    assert entry.replace("$vessel", "/usr/local/bin/vessel") in blocks


def test_ctr_run_rm_gives_output_and_exit_status(containerd, ids):
    cid = ids()
    r = containerd.ctr("run", "--rm", *containerd.run_args(), IMAGE, cid, "/bin/sh", "-c",
                       "echo hello from $(hostname); echo pid=$$; exit 3")
    assert r.returncode == 3, r.stderr
    assert "hello from" in r.stdout and "pid=1" in r.stdout.split()
    assert cid not in [row[0] for row in containerd.table("container", "ls")]


def test_image_user_runs_the_process(containerd, ids):
    """An image's USER (a pod's runAsUser) goes through create and start as that user."""
    r = containerd.ctr("run", "--rm", *containerd.run_args(), NOBODY_IMAGE, ids(),
                       "/bin/sh", "-c", "id -u; id -g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["65534", "65534"]


def test_the_shim_runs_vessel(containerd, ids):
    """vessel's own state directory (the shim's --runc-root) holds the container while it
    runs: the calls went to vessel, not to the runc the shim would default to."""
    cid = ids()
    containerd.run_detached(IMAGE, cid, "sleep", "300")
    state_root = containerd.work / "runtime" / containerd.namespace
    r = run([containerd.vessel, "--root", str(state_root), "state", cid], timeout=30)
    assert r.returncode == 0, r.stderr
    assert '"running"' in r.stdout and cid in r.stdout


def test_task_kill_and_delete(containerd, ids):
    cid = ids()
    containerd.run_detached(IMAGE, cid, "/bin/sh", "-c",
                            "trap 'exit 7' TERM; while true; do sleep 0.1; done")
    containerd.ok("task", "kill", cid)  # SIGTERM, ctr's default
    wait_for(lambda: containerd.task_status(cid) == "STOPPED", what="the task to stop")
    r = containerd.ctr("task", "delete", cid)
    assert r.returncode == 0, r.stderr
    # the trap ran: SIGTERM reached the container's init, whose exit status ctr reports
    assert "exit code 7" in r.stderr, r.stderr
    assert containerd.task_status(cid) is None
    containerd.ok("container", "delete", cid)
    assert cid not in [row[0] for row in containerd.table("container", "ls")]
    assert not (containerd.work / "runtime" / containerd.namespace / cid).exists()


def test_task_exec(containerd, ids):
    cid = ids()
    containerd.run_detached(IMAGE, cid, "sleep", "300")
    r = containerd.ctr("task", "exec", "--exec-id", "probe", "--cwd", "/tmp", "--user",
                       "65534", cid, "/bin/sh", "-c",
                       "echo $(tr '\\0' ' ' < /proc/1/cmdline)/$(pwd)/$(id -u); exit 4")
    assert r.returncode == 4, r.stderr
    assert r.stdout.strip() == "sleep 300 //tmp/65534", r.stdout


def test_task_exec_with_a_terminal(containerd, ids):
    cid = ids()
    containerd.run_detached(IMAGE, cid, "sleep", "300")
    argv = ["ctr", "--address", str(containerd.socket), "--namespace", containerd.namespace,
            "task", "exec", "--tty", "--exec-id", "shell", "--fifo-dir",
            str(containerd.work / "fifo"), cid, "/bin/sh"]
    status, out = run_in_pty(argv, "tty; echo answer=$((6 * 7)); exit 6\r", timeout=60,
                             cwd=containerd.work)
    assert status == 6, out
    assert "/dev/pts/" in out and "answer=42" in out, out


def test_task_ps_lists_the_containers_processes(containerd, ids):
    """The shim asks the runtime for the container's host pids (`ps --format json`)."""
    cid = ids()
    containerd.run_detached(IMAGE, cid, "/bin/sh", "-c", "sleep 300 & sleep 301 & wait")
    init_pid = next(row[1] for row in containerd.table("task", "ls") if row[0] == cid)

    def listed():
        pids = [row[0] for row in containerd.table("task", "ps", cid)]
        return pids if len(pids) == 3 else None

    pids = wait_for(listed, what="the shell and its two sleeps in task ps")
    assert init_pid in pids
    cmdlines = sorted(open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
                      for pid in pids)
    assert cmdlines == ["/bin/sh -c sleep 300 & sleep 301 & wait", "sleep 300", "sleep 301"]


def test_memory_limit_is_set_and_enforced(containerd, ids):
    """ctr's spec mounts no cgroupfs inside: the limit is read on the host. The allocating
    child is OOM-killed and the container's shell lives on."""
    cid = ids()
    containerd.ok("run", "--detach", *containerd.run_args(), "--memory-limit", str(48 * MiB),
                  IMAGE, cid, "/bin/sh", "-c", "sleep 0.5; tail /dev/zero; sleep 300")
    pid = wait_for(lambda: next((row[1] for row in containerd.table("task", "ls")
                                 if row[0] == cid and row[2] == "RUNNING"), None),
                   what=f"task {cid} to run")
    memory = cgroup_dir(pid, "memory")
    if os.path.exists(f"{memory}/memory.limit_in_bytes"):
        limit, events = "memory.limit_in_bytes", "memory.oom_control"
    else:
        limit, events = "memory.max", "memory.events"
    with open(f"{memory}/{limit}") as f:
        assert f.read().strip() == str(48 * MiB)

    def oom_kills():
        with open(f"{memory}/{events}") as f:
            return int(re.search(r"^oom_kill (\d+)$", f.read(), re.M).group(1))

    wait_for(lambda: oom_kills() >= 1, timeout=20, what="the allocation to be OOM-killed")
    assert containerd.task_status(cid) == "RUNNING"


def test_task_pause_and_resume(containerd, ids):
    cid = ids()
    containerd.run_detached(IMAGE, cid, "/bin/sh", "-c", COUNTER)
    pid = next(row[1] for row in containerd.table("task", "ls") if row[0] == cid)

    def pause():
        containerd.ok("task", "pause", cid)
        assert containerd.task_status(cid) == "PAUSED"

    def resume():
        containerd.ok("task", "resume", cid)
        assert containerd.task_status(cid) == "RUNNING"

    assert_frozen_then_running(pid, pause, resume)


def test_run_with_a_terminal(containerd, ids):
    argv = ["ctr", "--address", str(containerd.socket), "--namespace", containerd.namespace,
            "run", "--rm", "--tty", *containerd.run_args(), IMAGE, ids(), "/bin/sh"]
    status, out = run_in_pty(argv, "tty; echo answer=$((6 * 7)); exit 5\r", timeout=60,
                             cwd=containerd.work)
    assert status == 5, out
    assert "/dev/pts/0" in out and "answer=42" in out, out
