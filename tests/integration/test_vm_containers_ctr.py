"""containerd driving VM-isolated containers: `ctr run --runc-binary .../vessel-vm` with
Debian's io.containerd.runc.v2 shim, so the shim's calls (create with pipes for stdio and a
--pid-file, start, state, exec --process --detach --pid-file, kill, delete, all with --log
and --log-format json) go to vessel-vm and each container boots its own microVM. Run in
the emulated KVM host (docs/vm-containers.md); containerd is tests/integration/clients.py's,
as in test_containerd.py.
"""
import os
import subprocess

import pytest

from clients import (cgroup_dir, container_ids, containerd_with_images, processes_naming,
                     wait_for)

pytestmark = pytest.mark.kvm

IMAGE = "docker.io/library/vessel-busybox:vm"
BOOT = 240  # seconds a guest may take to boot in the emulated host
SOCKET_ROOT = "/run/vessel-vmc"


@pytest.fixture(scope="module")
def vessel_vm(vessel, tmp_path_factory):
    link = tmp_path_factory.mktemp("vessel-vm") / "vessel-vm"
    os.symlink(vessel, link)
    return str(link)


@pytest.fixture(scope="module")
def containerd(vessel_vm, tmp_path_factory):
    # containerd's overlayfs snapshots can't sit on the emulated host's overlay /tmp; its
    # TMPDIR is ext4
    with containerd_with_images(vessel_vm, tmp_path_factory.mktemp("containerd-image"),
                                {IMAGE: {}}, under=os.environ.get("TMPDIR", "/tmp")) as daemon:
        yield daemon


@pytest.fixture
def ids(containerd):
    yield from container_ids(containerd)


def guest_kernel(vessel):
    """The release of the kernel vessel-vm boots (docs/vm-containers.md, Files)."""
    images = os.environ.get("VESSEL_IMAGES") or os.path.join(
        os.path.dirname(os.path.realpath(vessel)), "..", "images", "out")
    with open(os.path.join(images, "kernel-version")) as f:
        return f.read().strip()


def state_dir(containerd, cid):
    return containerd.work / "runtime" / containerd.namespace / cid


def assert_nothing_left(containerd, cid, vmm, sockets):
    """No VMM, no virtiofsd, no socket directory, no state directory of the container."""
    wait_for(lambda: not os.path.exists(f"/proc/{vmm}") and not processes_naming(sockets),
             timeout=10, what=f"the VMM {vmm} and its virtiofsd to go")
    assert not os.path.exists(sockets), os.listdir(sockets)
    assert not os.listdir(SOCKET_ROOT), os.listdir(SOCKET_ROOT)
    assert not state_dir(containerd, cid).exists()
    assert cid not in [row[0] for row in containerd.table("container", "ls")]


def test_ctr_run_rm_guest_kernel_and_exit_status(containerd, ids, vessel):
    """`ctr run --rm`: the container sees the guest's kernel, its stdout and stderr come
    back through the shim's pipes, and its exit status is ctr's."""
    kernel = guest_kernel(vessel)
    assert kernel != os.uname().release, "the guest's kernel is the host's: nothing to tell"
    cid = ids()
    r = containerd.ctr("run", "--rm", *containerd.run_args(), IMAGE, cid, "/bin/sh", "-c",
                       "uname -r; echo to-stderr >&2; exit 7", timeout=BOOT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 7, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.splitlines() == [kernel], r.stdout
    assert "to-stderr" in r.stderr, r.stderr
    assert not state_dir(containerd, cid).exists()
    assert not os.listdir(SOCKET_ROOT), os.listdir(SOCKET_ROOT)
    assert cid not in [row[0] for row in containerd.table("container", "ls")]


def test_ctr_run_detached_exec_kill_delete(containerd, ids, vessel):
    """`ctr run -d`, `ctr task exec` (its output and status), `ctr task kill` (SIGTERM
    reaches the container's trap, whose status the task stops with), `ctr task delete`,
    `ctr container rm`: then nothing of the container is left on the host."""
    cid = ids()
    containerd.run_detached(IMAGE, cid, "/bin/sh", "-c",
                            "trap 'exit 42' TERM; while :; do sleep 1; done", timeout=BOOT)
    vmm = int(next(row[1] for row in containerd.table("task", "ls") if row[0] == cid))
    sockets = os.readlink(state_dir(containerd, cid) / "sockets")
    # the task's pid is the VMM's; the container's shell is the guest's only
    with open(f"/proc/{vmm}/cmdline", "rb") as f:
        assert b"vessel-vm" in f.read()
    assert not processes_naming("trap 'exit 42' TERM")
    # the VMM is in the cgroup containerd named (linux.cgroupsPath /NAMESPACE/ID), not the
    # shim's: the shim's OOM watch and `ctr task metrics` read the microVM's
    cg = cgroup_dir(vmm, "memory")
    assert cg.endswith(f"/{containerd.namespace}/{cid}"), cg

    r = containerd.ctr("task", "exec", "--exec-id", "probe", cid, "/bin/sh", "-c",
                       "uname -r; tr '\\0' ' ' < /proc/1/cmdline; echo; echo to-stderr >&2; "
                       "exit 5", timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 5, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.splitlines() == [
        guest_kernel(vessel), "/bin/sh -c trap 'exit 42' TERM; while :; do sleep 1; done "
    ], r.stdout
    assert "to-stderr" in r.stderr, r.stderr
    assert containerd.task_status(cid) == "RUNNING"
    # the shim's `ps --format json` answers from the guest: its shell and sleep, not the VMM
    pids = [int(row[0]) for row in containerd.table("task", "ps", cid)]
    assert pids and vmm not in pids, pids

    containerd.ok("task", "kill", cid)  # SIGTERM, ctr's default
    wait_for(lambda: containerd.task_status(cid) == "STOPPED", timeout=60,
             what="the task to stop")
    r = containerd.ctr("task", "delete", cid, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "exit code 42" in r.stderr, r.stderr
    assert containerd.task_status(cid) is None
    containerd.ok("container", "rm", cid)
    assert_nothing_left(containerd, cid, vmm, sockets)
    assert not os.path.exists(cg), cg


@pytest.mark.xfail(strict=False, reason=(
    "known bug, open in issue 13: now and then the shim's cleanup after it disconnected "
    "(`containerd-shim-runc-v2 delete`, whose runc delete --force runs with --log in the "
    "bundle and a SIGKILL parent-death signal) logs `failed to remove runc container ... "
    "vessel-vm did not terminate successfully: exit status 255:` with no output; seen in "
    "stop 24 and in 1 of 3 runs on 2026-12-07; not in 26 cycles on 2026-12-08 (a wrapper "
    "logging each delete's status and output, then the emulated host's exit_group trace). "
    "vessel's own paths exit 0, 1 or 2 there; cause unknown"))
def test_the_shim_saw_no_runtime_call_fail(containerd):
    """Every runtime call the shim made in the tests above (create, start, state, exec,
    kill, delete, and the cleanup's delete --force) succeeded: containerd logs a warning
    with the runtime's exit status for any that did not."""
    failed = [line for line in containerd.log.read_text(errors="replace").splitlines()
              if "failed to remove runc container" in line or
              ("level=warn" in line or "level=error" in line) and "exit status" in line]
    assert not failed, "\n".join(failed)
