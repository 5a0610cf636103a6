"""Jailed VMMs in the host's VM inventory: `vessel jail` checks `--overcommit` and leaves the
record on the host side, since the jailed VMM sees only its jail (docs/jail.md, "The
host's VM inventory"; docs/vm.md, "vm list and overcommit").

The jailed VMM is the static build (`make vessel`, or VESSEL_STATIC) running a spinning PVH
guest copied into the jail's root; it needs a /dev/kvm that runs guests, so the tests are
kvm-marked (tests/kvm.sh runs them in the emulated KVM host where there is none)."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import run
from test_jail import GID, UID, demo_runs, limits_for_host, static_vessel
from test_vm_cli import one_error_line, wait_running
from test_vm_inventory import curl
from vm_images import SPIN, pvh_elf, write


# every test runs a guest: only where KVM is hardware-assisted (here or in the emulated host)
pytestmark = pytest.mark.kvm


@pytest.fixture(scope="module")
def jail_env(vessel):
    assert demo_runs(vessel), "the demo guest does not run on this KVM"
    sv = static_vessel()
    assert sv, "no static vessel: run `make vessel` (the jail holds no shared libraries)"
    return sv


def vm_list(vessel, state):
    r = run([vessel, "vm", "--state-dir", str(state), "list", "--format", "json"], timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def make_root(base, jid, spin):
    """The orchestrator's part: the guest into the jail's root before the jailer runs."""
    root = base / "vessel" / jid / "root"
    root.mkdir(parents=True)
    (root / "spin.elf").write_bytes(pathlib.Path(spin).read_bytes())
    os.chmod(root / "spin.elf", 0o644)
    return root


def jail_argv(vessel, sv, base, jid, state, *vm_args, jail_opts=()):
    return [vessel, "jail", "--id", jid, "--exec-file", str(sv), "--uid", str(UID), "--gid",
            str(GID), "--chroot-base-dir", str(base), *jail_opts, "--", "vm", "--state-dir",
            str(state), "run", "--kernel", "/spin.elf", *vm_args]


def start(argv):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    wait_running(p)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 128 + signal.SIGTERM, err
    return err


def host_state(base):
    """What a refused jail must leave as it was: files under base, mounts, cgroups."""
    files = sorted(str(p) for p in pathlib.Path(base).rglob("*"))
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f)
    cgroups = sorted(str(p) for p in pathlib.Path("/sys/fs/cgroup").glob("**/jinv-*"))
    return files, mounts, cgroups


def test_jailed_vmm_is_listed_and_checked(vessel, jail_env, tmp_path):
    spin = write(tmp_path / "spin.elf", pvh_elf(SPIN))
    base, state = tmp_path / "base", tmp_path / "vms"
    a_id, b_id = "a-" + uuid.uuid4().hex[:8], "b-" + uuid.uuid4().hex[:8]
    make_root(base, a_id, spin)
    a = start(jail_argv(vessel, jail_env, base, a_id, state, "--cpus", "2", "--memory", "64M"))
    b = None
    try:
        (rec,) = vm_list(vessel, state)
        assert (rec["id"], rec["pid"], rec["vcpus"], rec["memory_mib"]) == (a_id, a.pid, 2, 64), rec
        assert rec["rss_mib"] > 0, rec
        table = run([vessel, "vm", "--state-dir", str(state), "list"], timeout=30)
        assert a_id in table.stdout and str(a.pid) in table.stdout, table.stdout

        # a second jailed VM that would pass cpu=R (R leaves exactly a's 2 vCPUs) is refused
        # with vm run's own line, before any directory, mount or cgroup is made
        ratio = f"cpu={2 / os.cpu_count()!r}"
        before = host_state(base)
        r = run(jail_argv(vessel, jail_env, base, b_id, state, "--overcommit", ratio,
                          jail_opts=("--parent-cgroup", "jinv-" + b_id, "--cgroup-version",
                                     limits_for_host()[0])),
                timeout=30, stdin=subprocess.DEVNULL)
        one_error_line(r, 1, "overcommit: 1 more vCPU would commit 3", "1 VM running commit 2",
                       "0 free (vessel vm list shows them; --overcommit sets the ratios)")
        assert host_state(base) == before
        assert not (base / "vessel" / b_id).exists()
        assert [x["id"] for x in vm_list(vessel, state)] == [a_id]

        # the jailed VMM was told the check was made: it neither warns that it can't count
        # nor makes a state directory inside its jail
        assert "VM inventory" not in stop(a)
        assert sorted(os.listdir(base / "vessel" / a_id / "root")) == ["dev", "spin.elf",
                                                                      "vessel"]
        a = None
        assert vm_list(vessel, state) == []
        # the room is free again
        make_root(base, b_id, spin)
        b = start(jail_argv(vessel, jail_env, base, b_id, state, "--overcommit", ratio))
        assert [(x["id"], x["pid"]) for x in vm_list(vessel, state)] == [(b_id, b.pid)]
        stop(b)
        b = None
    finally:
        for p in (a, b):
            if p:
                p.kill()
                p.communicate()


def test_jailed_and_unjailed_count_against_each_other(vessel, jail_env, tmp_path):
    spin = write(tmp_path / "spin.elf", pvh_elf(SPIN))
    base, state = tmp_path / "base", tmp_path / "vms"
    ratio = f"cpu={2 / os.cpu_count()!r}"
    jid = "j-" + uuid.uuid4().hex[:8]
    make_root(base, jid, spin)
    # an unjailed VMM's 2 vCPUs fill cpu=R: the jailer refuses a jailed one
    u = start([vessel, "vm", "--state-dir", str(state), "run", "--kernel", spin, "--cpus", "2"])
    j = None
    try:
        r = run(jail_argv(vessel, jail_env, base, jid, state, "--overcommit", ratio),
                timeout=30, stdin=subprocess.DEVNULL)
        one_error_line(r, 1, "overcommit: 1 more vCPU would commit 3", "1 VM running commit 2")
        assert sorted(os.listdir(base / "vessel" / jid / "root")) == ["spin.elf"]
        stop(u)
        u = None
        # and the other way round: a jailed VMM's 2 vCPUs refuse an unjailed one
        j = start(jail_argv(vessel, jail_env, base, jid, state, "--cpus", "2"))
        r = run([vessel, "vm", "--state-dir", str(state), "run", "--kernel", spin,
                 "--overcommit", ratio], timeout=30, stdin=subprocess.DEVNULL)
        one_error_line(r, 1, "overcommit: 1 more vCPU would commit 3", "1 VM running commit 2")
        stop(j)
        j = None
    finally:
        for p in (u, j):
            if p:
                p.kill()
                p.communicate()


def test_forked_jailed_vmm_keeps_its_record(vessel, jail_env, tmp_path):
    """--new-pid-ns --daemonize: the jailer's parent exits at once; the record names the
    child it forked (the VMM), read from the config file in the jail's root, and goes
    when that VMM is killed."""
    spin = write(tmp_path / "spin.elf", pvh_elf(SPIN))
    base, state = tmp_path / "base", tmp_path / "vms"
    jid = "f-" + uuid.uuid4().hex[:8]
    root = make_root(base, jid, spin)
    (root / "vm.json").write_text(json.dumps({
        "boot-source": {"kernel_image_path": "/spin.elf"},
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 96}}))
    r = run([vessel, "jail", "--id", jid, "--exec-file", str(jail_env), "--uid", str(UID),
             "--gid", str(GID), "--chroot-base-dir", str(base), "--new-pid-ns", "--daemonize",
             "--", "vm", "--state-dir", str(state), "run", "--config-file", "/vm.json"],
            timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    pid = int((root / "vessel.pid").read_text())
    try:
        (rec,) = vm_list(vessel, state)
        assert (rec["id"], rec["pid"], rec["vcpus"], rec["memory_mib"]) == (jid, pid, 2, 96), rec
    finally:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert vm_list(vessel, state) == []
    assert not (state / f"{pid}.json").exists(), "the dead VMM's record was dropped"


def test_jailed_api_vmm_is_counted_at_its_max_machine(vessel, jail_env, tmp_path):
    """`vm api` gets its machine after the exec, where the jailer can't see it: it is counted
    at --max-machine, and its VMM refuses a larger InstanceStart."""
    spin = write(tmp_path / "spin.elf", pvh_elf(SPIN))
    # short: the API socket's path from outside the jail must fit sun_path's 108 bytes
    base, state = pathlib.Path(tempfile.mkdtemp(prefix="ji")), tmp_path / "vms"
    jid = "api-" + uuid.uuid4().hex[:8]
    root = make_root(base, jid, spin)
    p = subprocess.Popen([vessel, "jail", "--id", jid, "--exec-file", str(jail_env), "--uid",
                          str(UID), "--gid", str(GID), "--chroot-base-dir", str(base), "--",
                          "vm", "--state-dir", str(state), "api", "--api-sock", "/api.sock",
                          "--max-machine", "2,64M"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    sock = root / "api.sock"
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        (rec,) = vm_list(vessel, state)
        assert (rec["id"], rec["pid"], rec["vcpus"], rec["memory_mib"]) == (jid, p.pid, 2, 64), rec
        assert curl(sock, "PUT", "/boot-source", {"kernel_image_path": "/spin.elf"})[0] == 204
        assert curl(sock, "PUT", "/machine-config", {"vcpu_count": 3, "mem_size_mib": 64})[0] == 204
        code, text = curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        assert code == 400, text
        assert "a VM of 3 vCPUs and 64 MiB is larger than --max-machine (2 vCPUs, 64 MiB" in \
            json.loads(text)["fault_message"], text
        assert curl(sock, "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 64})[0] == 204
        code, text = curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        assert code == 204, text
        assert [x["pid"] for x in vm_list(vessel, state)] == [p.pid]
        stop(p)
        p = None
        assert vm_list(vessel, state) == []
    finally:
        if p:
            p.kill()
            p.communicate()
        shutil.rmtree(base, ignore_errors=True)
