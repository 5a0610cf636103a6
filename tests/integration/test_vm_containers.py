"""VM-isolated containers (docs/vm-containers.md): the same bundle and runc command line,
the container in its own microVM (Debian's cloud kernel, vessel itself as the guest's
init and agent, the rootfs shared by virtio-fs). Run in the emulated KVM host: each
container boots a real Linux guest, which takes tens of seconds there.

The level is picked by the name vessel-vm (a symlink to the binary) or by the annotation
io.vessel.isolation=vm in config.json; both are used below.
"""
import json
import os
import time

import pytest

from conftest import run

pytestmark = pytest.mark.kvm

MiB = 1 << 20
BOOT = 240  # seconds a guest may take to boot in the emulated host


@pytest.fixture
def vessel_vm(vessel, tmp_path):
    link = tmp_path / "vessel-vm"
    os.symlink(vessel, link)
    return str(link)


def host_pids_with(text):
    """Host processes whose command line holds text."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append((int(pid), cmd))
    return found


def state(bundle, cid):
    r = bundle.cmd("state", cid)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_status(bundle, cid, want, timeout):
    end = time.time() + timeout
    while time.time() < end:
        s = state(bundle, cid)
        if s["status"] == want:
            return s
        time.sleep(0.5)
    pytest.fail(f"{cid} not {want} after {timeout}s: {s}\n{console(bundle, cid)}")


def console(bundle, cid):
    try:
        return "--- guest console:\n" + (bundle.root / cid / "console.log").read_text()[-4000:]
    except OSError as e:
        return f"(no console log: {e})"


def test_run_guest_kernel_and_exit_status(bundle, vessel_vm):
    """vessel-vm run: the container sees the guest's kernel, not the host's, its stdout
    and stderr come back, and its exit status is run's."""
    # the limits size the VM: 100 MiB + 128 MiB of overhead, 2 vCPUs
    bundle.config["linux"].setdefault("resources", {})["memory"] = {"limit": 100 * MiB}
    bundle.config["linux"]["resources"]["cpu"] = {"quota": 200000, "period": 100000}
    bundle.sh("grep MemTotal /proc/meminfo; echo cpus $(grep -c ^processor /proc/cpuinfo); "
              "uname -r; echo to-stderr >&2; exit 7")
    bundle.write()
    cid = bundle.new_id()
    t = time.time()
    r = run([vessel_vm, "--root", str(bundle.root), "run", "--bundle", str(bundle.path), cid],
            timeout=BOOT, stdin=subprocess_devnull())
    took = time.time() - t
    # the same bundle at the other level, for the figure (and the kernel it sees)
    t = time.time()
    plain = run([bundle.vessel, "--root", str(bundle.root), "run", "--bundle",
                 str(bundle.path), bundle.new_id()], timeout=60, stdin=subprocess_devnull())
    print(f"vessel-vm run took {took:.2f} s, vessel run {time.time() - t:.2f} s")
    assert plain.returncode == 7, plain.stderr
    assert plain.stdout.strip().splitlines()[-1] == os.uname().release
    assert r.returncode == 7, f"rc {r.returncode}\nstdout {r.stdout}\nstderr {r.stderr}"
    kernel = r.stdout.strip().splitlines()[-1]
    assert kernel and kernel != os.uname().release, r.stdout
    assert "cloud" in kernel, kernel
    assert "to-stderr" in r.stderr
    mem_kib = int(r.stdout.split("MemTotal:")[1].split()[0])
    assert 150 * 1024 < mem_kib <= 228 * 1024, r.stdout
    want_cpus = min(2, os.cpu_count())
    assert f"cpus {want_cpus}" in r.stdout, r.stdout
    # run deletes the container: nothing of it is left
    assert not (bundle.root / cid).exists()
    assert not host_pids_with(str(bundle.root / cid))
    assert not os.listdir("/run/vessel-vmc"), os.listdir("/run/vessel-vmc")


def popen_until(argv, line, timeout):
    """argv with its stdout and stderr piped: the process once it printed line (bytes, with
    its newline), and what it printed so far."""
    import subprocess
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    return p, read_until_line(p, line, timeout)


def read_until_line(p, line, timeout):
    """What p prints on its stdout up to line (or kills it and fails at the timeout)."""
    import select
    seen = b""
    end = time.time() + timeout
    try:
        while line not in seen and time.time() < end:
            if select.select([p.stdout], [], [], 1)[0]:
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        assert line in seen, (seen, p.poll())
    except BaseException:
        p.kill()
        p.wait()
        raise
    return seen


def run_until_up(vessel_vm, bundle, cid, *flags):
    """`vessel-vm run` of a container whose script prints `up` first."""
    return popen_until([vessel_vm, "--root", str(bundle.root), "run", *flags, "--bundle",
                        str(bundle.path), cid], b"up\n", BOOT)


def test_run_forwards_signals(bundle, vessel_vm):
    """A signal to vessel-vm run reaches the container's process in the guest, whose
    exit status run then gives."""
    import signal
    bundle.sh("trap 'echo got-TERM; exit 42' TERM; echo up; while :; do sleep 1; done")
    bundle.write()
    p, seen = run_until_up(vessel_vm, bundle, bundle.new_id())
    try:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 42, (p.returncode, err)
    assert b"got-TERM" in seen + out


def subprocess_devnull():
    import subprocess
    return subprocess.DEVNULL


def test_lifecycle_annotation(bundle):
    """create/start/state/kill/delete with the annotation: state goes created -> running
    -> stopped; the pid is the VMM's; the container's processes are not the host's; kill
    reaches the process in the guest; delete leaves no process, socket or directory."""
    token = "vmc-" + os.urandom(4).hex()
    bundle.config.setdefault("annotations", {})["io.vessel.isolation"] = "vm"
    bundle.sh(f"trap 'echo got-TERM; exit 42' TERM; echo up {token}; "
              f"while :; do sleep 1; done")
    cid, r = bundle.create(timeout=BOOT)
    assert r.returncode == 0, r.stderr + console(bundle, cid)
    s = state(bundle, cid)
    assert s["status"] == "created", s
    assert s["annotations"]["io.vessel.isolation"] == "vm"
    vmm = s["pid"]
    with open(f"/proc/{vmm}/cmdline", "rb") as f:
        assert b"create" in f.read()
    # the VMM's only helper on the host is virtiofsd, serving the rootfs
    sockets = os.readlink(bundle.root / cid / "sockets")
    helpers = host_pids_with(sockets)
    assert [c for _, c in helpers if "virtiofsd" in c], helpers

    r = bundle.cmd("start", cid, timeout=60)
    assert r.returncode == 0, r.stderr
    wait_status(bundle, cid, "running", 10)
    out = bundle.path / f"{cid}.out"
    end = time.time() + 60
    while token not in out.read_text() and time.time() < end:
        time.sleep(0.5)
    assert f"up {token}" in out.read_text(), console(bundle, cid)
    # the container's shell and its sleeps run in the guest only
    assert not host_pids_with(token), host_pids_with(token)

    r = bundle.cmd("kill", cid, "TERM")
    assert r.returncode == 0, r.stderr
    wait_status(bundle, cid, "stopped", 60)
    assert "got-TERM" in out.read_text()
    r = bundle.cmd("delete", cid)
    assert r.returncode == 0, r.stderr
    assert not (bundle.root / cid).exists()
    assert not os.path.exists(sockets)
    end = time.time() + 10
    while host_pids_with(sockets) and time.time() < end:
        time.sleep(0.2)
    assert not host_pids_with(sockets)
    assert not os.path.exists(f"/proc/{vmm}")


def test_delete_force_running(bundle, vessel_vm):
    """delete --force of a running VM container: the VMM and virtiofsd go, and so does
    the directory with its sockets (terminals: test_vm_containers_tty.py)."""
    bundle.sh("while :; do sleep 1; done")
    bundle.write()
    cid = bundle.new_id()
    # the container's stdio is create's: files, or the test would wait for the VMM
    with open(bundle.path / "out", "w") as o, open(bundle.path / "err", "w") as e:
        import subprocess
        p = subprocess.run([vessel_vm, "--root", str(bundle.root), "create", "--bundle",
                            str(bundle.path), cid], stdin=subprocess.DEVNULL, stdout=o,
                           stderr=e, timeout=BOOT)
    assert p.returncode == 0, (bundle.path / "err").read_text() + console(bundle, cid)
    assert bundle.cmd("start", cid).returncode == 0
    vmm = state(bundle, cid)["pid"]
    sockets = os.readlink(bundle.root / cid / "sockets")
    r = bundle.cmd("delete", cid)
    assert r.returncode != 0 and "not stopped" in r.stderr
    r = bundle.cmd("delete", "--force", cid, timeout=30)
    assert r.returncode == 0, r.stderr
    assert not (bundle.root / cid).exists()
    assert not os.path.exists(sockets)
    end = time.time() + 10
    while (host_pids_with(sockets) or os.path.exists(f"/proc/{vmm}")) and time.time() < end:
        time.sleep(0.2)
    assert not host_pids_with(sockets)
    assert not os.path.exists(f"/proc/{vmm}")


DETACHED_EXEC = """
import ctypes, os, subprocess, sys
# podman's conmon or containerd's shim: a subreaper that runs `exec --detach --pid-file`,
# signals that pid if told to (the shim's `ctr task kill --exec-id`), and waits for it
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
sig, pid_file = int(sys.argv[1]), sys.argv[2]
r = subprocess.run(sys.argv[3:], stdin=subprocess.DEVNULL)
assert r.returncode == 0, r.returncode
pid = int(open(pid_file).read())
print("pid", pid, "alive", os.path.exists(f"/proc/{pid}"), flush=True)
if sig:
    os.kill(pid, sig)
_, ws = os.waitpid(pid, 0)
print("status", os.waitstatus_to_exitcode(ws), flush=True)
"""


def create_started(bundle, vessel_vm):
    """The bundle's container created (stdout and stderr into the bundle's out and err)
    and started in its microVM: the vessel-vm command with its --root, and the id. What a
    failure made is deleted."""
    import subprocess
    bundle.write()
    cid = bundle.new_id()
    vm = [vessel_vm, "--root", str(bundle.root)]
    with open(bundle.path / "out", "w") as o, open(bundle.path / "err", "w") as e:
        p = subprocess.run(vm + ["create", "--bundle", str(bundle.path), cid],
                           stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=BOOT)
    try:
        assert p.returncode == 0, (bundle.path / "err").read_text() + console(bundle, cid)
        assert bundle.cmd("start", cid).returncode == 0
    except BaseException:
        bundle.cmd("delete", "--force", cid, timeout=30)
        raise
    return vm, cid


def test_exec(bundle, vessel_vm):
    """vessel-vm exec runs a new process in the running container in its guest: output
    and exit status come back, stdin goes in byte for byte, a missing binary fails clearly,
    --process and the args form's options work, --detach leaves a pid whose exit status is
    the process's; and the container's own process is untouched by it all."""
    import subprocess
    token = "vmx-" + os.urandom(4).hex()
    bundle.sh(f"echo up {token}; while :; do sleep 1; done")
    vm, cid = create_started(bundle, vessel_vm)
    try:
        sockets = os.readlink(bundle.root / cid / "sockets")

        t = time.time()
        r = run(vm + ["exec", cid, "/bin/sh", "-c", "uname -r; echo to-err >&2; exit 5"],
                timeout=60, stdin=subprocess.DEVNULL)
        print(f"exec took {time.time() - t:.2f} s")
        assert r.returncode == 5, (r.returncode, r.stdout, r.stderr)
        kernel = r.stdout.strip()
        assert kernel != os.uname().release and "cloud" in kernel, r.stdout
        assert r.stderr == "to-err\n", r.stderr
        # the exec'd shell is in the container: its pid namespace, with the init as 1
        r = run(vm + ["exec", cid, "/bin/sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"],
                timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0 and token in r.stdout, (r.stdout, r.stderr)

        data = os.urandom(300 * 1024)  # several frames, every byte value
        p = subprocess.run(vm + ["exec", cid, "cat"], input=data, capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout == data, (len(p.stdout), len(data))

        r = run(vm + ["exec", cid, "/no/such/binary"], timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode != 0
        assert "/no/such/binary" in r.stderr and "in its microVM" in r.stderr, r.stderr

        # the args form's options reach the guest's exec: env, cwd, user
        r = run(vm + ["exec", "--env", "GREETING=hi there", "--cwd", "/proc", "--user",
                      "65534:65534", cid, "/bin/sh", "-c", "echo $GREETING; pwd; id -u"],
                timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[:3] == ["hi there", "/proc", "65534"], r.stdout
        proc = bundle.path / "process.json"
        proc.write_text(json.dumps({"args": ["/bin/sh", "-c", "echo $V; kill -9 $$"],
                                    "env": ["V=from-process-json"], "cwd": "/",
                                    "user": {"uid": 0, "gid": 0}}))
        r = run(vm + ["exec", "--process", str(proc), cid], timeout=60,
                stdin=subprocess.DEVNULL)
        assert r.returncode == 128 + 9, (r.returncode, r.stderr)
        assert r.stdout == "from-process-json\n", r.stdout

        pid_file = bundle.path / "exec.pid"
        r = run(["/usr/bin/python3", "-c", DETACHED_EXEC, "0", str(pid_file)] + vm +
                ["exec", "--detach", "--pid-file", str(pid_file), cid, "/bin/sh", "-c",
                 "sleep 2; exit 4"], timeout=60)
        assert r.returncode == 0, r.stderr
        assert "alive True" in r.stdout and "status 4" in r.stdout, r.stdout

        # the container's own process ran on through all of it
        assert state(bundle, cid)["status"] == "running"
        assert (bundle.path / "out").read_text().startswith(f"up {token}")
    finally:
        r = bundle.cmd("delete", "--force", cid, timeout=30)
    assert r.returncode == 0, r.stderr
    end = time.time() + 10
    while host_pids_with(sockets) and time.time() < end:
        time.sleep(0.2)
    assert not host_pids_with(sockets)
    assert not host_pids_with(str(bundle.root / cid))


def exec_until_ready(vm, cid, script):
    """`vessel-vm exec CID sh -c SCRIPT` whose script prints `ready` once it is set."""
    return popen_until(vm + ["exec", cid, "/bin/sh", "-c", script], b"ready\n", 120)


def finish(p, timeout=60):
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out, err


def blocks_term(pid):
    """exec's own block of the forwarded signals is on (SigBlk of /proc/PID/status): TERM
    blocked, URG (never forwarded) not, so a moment where start-up code blocks every
    signal is not taken for it (a TERM then would come once that ends, and kill exec)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    mask = int(line.split()[1], 16)
                    return bool(mask & (1 << (15 - 1))) and not mask & (1 << (23 - 1))
    except OSError:
        pass
    return False


def test_exec_forwards_signals(bundle, vessel_vm):
    """A signal to vessel-vm exec reaches the exec'd process in the guest (KILL on the
    exec's connection) and exec exits with the status the process then has: a shell's TERM
    trap runs and picks it; without a trap TERM ends the process, 143, and nothing of it
    is left in the guest; a TERM that comes before the process runs waits for it instead
    of killing exec; one to --detach's relay (ctr task kill --exec-id) reaches it too."""
    import signal
    import subprocess
    bundle.sh("echo up; while :; do sleep 1; done")
    vm, cid = create_started(bundle, vessel_vm)
    try:

        p, seen = exec_until_ready(
            vm, cid, "trap 'echo got-TERM; exit 42' TERM; echo ready; "
                     "while :; do sleep 1; done")
        p.send_signal(signal.SIGTERM)
        out, err = finish(p)
        assert p.returncode == 42, (p.returncode, seen + out, err)
        assert b"got-TERM" in seen + out, (seen + out, err)

        # as runc's exec: ALRM and real-time signals too, not only the common six
        p, seen = exec_until_ready(
            vm, cid, "trap 'echo got-ALRM' ALRM; trap 'echo got-40; exit 43' 40; "
                     "echo ready; while :; do sleep 1; done")
        p.send_signal(signal.SIGALRM)
        seen += read_until_line(p, b"got-ALRM\n", 60)
        p.send_signal(40)
        out, err = finish(p)
        assert p.returncode == 43 and b"got-40" in out, (p.returncode, seen + out, err)

        # the shell is the exec'd process itself: TERM ends it, not a relay in between
        p, seen = exec_until_ready(vm, cid, "echo ready; while :; do sleep 1; done")
        p.send_signal(signal.SIGTERM)
        out, err = finish(p)
        assert p.returncode == 128 + signal.SIGTERM, (p.returncode, seen + out, err)

        # before the EXEC reached the guest: held, then forwarded once the process runs
        p = subprocess.Popen(vm + ["exec", cid, "/bin/sh", "-c", "exec sleep 1002"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        end = time.time() + 30
        while not blocks_term(p.pid) and p.poll() is None and time.time() < end:
            time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
        out, err = finish(p)
        assert p.returncode == 128 + signal.SIGTERM, (p.returncode, out, err)

        pid_file = bundle.path / "exec.pid"
        r = run(["/usr/bin/python3", "-c", DETACHED_EXEC, str(int(signal.SIGTERM)),
                 str(pid_file)] + vm +
                ["exec", "--detach", "--pid-file", str(pid_file), cid, "/bin/sh", "-c",
                 "exec sleep 1003"], timeout=60)
        assert r.returncode == 0, r.stderr
        assert "status 143" in r.stdout, (r.stdout, r.stderr)

        # none of the signalled processes outlived its exec in the guest
        r = run(vm + ["exec", cid, "ps"], timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert "sleep 100" not in r.stdout, r.stdout
        assert state(bundle, cid)["status"] == "running"
    finally:
        r = bundle.cmd("delete", "--force", cid, timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def podman_vm(vessel_vm, tmp_path_factory, monkeypatch):
    import pathlib
    import tempfile

    import clients
    from clients import NetNS, Podman, busybox_rootfs
    # podman's overlay storage can't sit on the emulated host's overlay /tmp: its
    # TMPDIR (ext4) still gives a path short enough for conmon's socket
    monkeypatch.setattr(clients, "short_work_dir", lambda prefix: pathlib.Path(
        tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR", "/tmp"))))
    rootfs = busybox_rootfs(tmp_path_factory.mktemp("podman-rootfs"), vessel_vm)
    netns = NetNS()
    p = None
    try:
        p = Podman(vessel_vm, netns)
        p.import_image(rootfs, "localhost/vessel-busybox:vm")
        yield p
    finally:
        problems = p.cleanup() if p else []
        netns.delete()
        assert not problems, f"podman left things behind: {problems}"


def test_podman_runtime_vessel_vm(podman_vm):
    """podman --runtime vessel-vm: run --rm prints the guest's kernel and gives the
    container's exit status (conmon waits on the VMM)."""
    r = podman_vm("run", "--rm", "--network", "none", "localhost/vessel-busybox:vm",
                  "/bin/sh", "-c", "uname -r; exit 3", timeout=BOOT)
    assert r.returncode == 3, r.stderr
    kernel = r.stdout.strip().splitlines()[-1]
    assert kernel != os.uname().release and "cloud" in kernel, r.stdout
    assert not os.listdir("/run/vessel-vmc"), os.listdir("/run/vessel-vmc")


def test_podman_detached_exec_logs_stop_rm(podman_vm):
    """podman's detached lifecycle on vessel-vm: run -d, exec (conmon runs vessel-vm exec
    --detach and waits for the pid it names), logs, stop, rm; nothing is left behind."""
    name = "vmc-" + os.urandom(3).hex()
    podman_vm.ok("run", "-d", "--name", name, "--network", "none",
                 "localhost/vessel-busybox:vm", "/bin/sh", "-c",
                 "echo hello-from-the-guest; trap 'exit 0' TERM; while :; do sleep 1; done",
                 timeout=BOOT)
    r = podman_vm("exec", name, "/bin/sh", "-c", "uname -r; cat /etc/hostname; exit 6")
    assert r.returncode == 6, (r.returncode, r.stdout, r.stderr)
    kernel = r.stdout.strip().splitlines()[0]
    assert kernel != os.uname().release and "cloud" in kernel, r.stdout
    r = podman_vm("exec", "-i", name, "cat", input="through podman\n")
    assert r.returncode == 0 and r.stdout == "through podman\n", (r.stdout, r.stderr)
    end = time.time() + 30
    while "hello-from-the-guest" not in podman_vm.ok("logs", name) and time.time() < end:
        time.sleep(0.5)
    assert "hello-from-the-guest" in podman_vm.ok("logs", name)
    podman_vm.ok("stop", "--time", "5", name, timeout=90)
    assert podman_vm.inspect(name, "{{.State.Status}}") == "exited"
    podman_vm.ok("rm", name, timeout=60)
    end = time.time() + 10
    while host_pids_with("virtiofsd") and time.time() < end:
        time.sleep(0.2)
    assert not host_pids_with("virtiofsd"), host_pids_with("virtiofsd")
    assert not os.listdir("/run/vessel-vmc"), os.listdir("/run/vessel-vmc")


def virtiofsd_sockets(sockets):
    """{socket path: [pids]} of the virtiofsd processes serving a container."""
    found = {}
    for pid, cmd in host_pids_with(sockets):
        if "virtiofsd" not in cmd:
            continue
        sock = cmd.split("--socket-path=")[1].split()[0]
        found.setdefault(sock, []).append(pid)
    return found


def sees_read_only_root(pids):
    """Whether one of the processes (virtiofsd after its pivot_root into the share) has a
    read-only mount at its /: what the host enforces, whatever the guest asks."""
    for pid in pids:
        try:
            lines = open(f"/proc/{pid}/mountinfo").read().splitlines()
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[4] == "/" and "ro" in f[5].split(","):
                return True
    return False


def test_bind_mounts(bundle, tmp_path):
    """config.json's bind mounts reach the container in its guest: a directory through a
    virtio-fs share of its own, readable and writable, the write seen on the host; a `ro`
    one refuses writes, and its virtiofsd sees it read-only on the host; a regular file is
    a copy. On the host there is only the VMM and the virtiofsd processes; the container's
    own processes are the guest's."""
    token = "vmb-" + os.urandom(4).hex()
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (rw / "hello").write_text("from the host\n")
    (ro / "keep").write_text("read me\n")
    hosts = tmp_path / "hosts-file"
    hosts.write_text("10.1.2.3 vmc-bind-test\n")
    bundle.config.setdefault("annotations", {})["io.vessel.isolation"] = "vm"
    bundle.config["mounts"] += [
        {"destination": "/mnt/rw", "type": "bind", "source": str(rw),
         "options": ["rbind", "rw"]},
        {"destination": "/mnt/ro", "type": "bind", "source": str(ro),
         "options": ["rbind", "ro"]},
        {"destination": "/etc/vmc-hosts", "type": "bind", "source": str(hosts),
         "options": ["bind", "ro"]},
    ]
    bundle.sh("cat /mnt/rw/hello; echo from-the-guest > /mnt/rw/written; cat /mnt/ro/keep; "
              "if echo x 2>/dev/null > /mnt/ro/nope; then echo ro-WRITABLE; "
              "else echo ro-refused; fi; cat /etc/vmc-hosts; echo done; "
              f"exec sh -c 'while :; do sleep 1; done' {token}")
    cid, r = bundle.create(timeout=BOOT)
    try:
        assert r.returncode == 0, r.stderr + console(bundle, cid)
        sockets = os.readlink(bundle.root / cid / "sockets")
        served = virtiofsd_sockets(sockets)
        # the rootfs and the two directories; each virtiofsd may be two processes (its
        # sandbox's fork)
        assert sorted(os.path.basename(s) for s in served) == \
            ["bind0.sock", "bind1.sock", "fs.sock"], served
        assert sees_read_only_root(served[f"{sockets}/bind1.sock"]), served
        assert not sees_read_only_root(served[f"{sockets}/bind0.sock"]), served
        assert bundle.cmd("start", cid).returncode == 0
        out = bundle.path / f"{cid}.out"
        end = time.time() + 60
        while "done" not in out.read_text() and time.time() < end:
            time.sleep(0.5)
        lines = out.read_text().splitlines()
        assert lines == ["from the host", "read me", "ro-refused", "10.1.2.3 vmc-bind-test",
                         "done"], (lines, (bundle.path / f"{cid}.err").read_text(),
                                   console(bundle, cid))
        assert (rw / "written").read_text() == "from-the-guest\n"
        assert not (ro / "nope").exists()
        # the host's processes of this container: the VMM (create's child) and virtiofsd
        vmm = state(bundle, cid)["pid"]
        mine = host_pids_with(sockets) + host_pids_with(str(bundle.root / cid))
        others = [(p, c) for p, c in mine if p != vmm and "virtiofsd" not in c]
        assert not others, others
        assert not host_pids_with(token), host_pids_with(token)
    finally:
        r = bundle.cmd("delete", "--force", cid, timeout=30)
    assert r.returncode == 0, r.stderr
    end = time.time() + 10
    while host_pids_with(sockets) and time.time() < end:
        time.sleep(0.2)
    assert not host_pids_with(sockets)
    assert not os.path.exists(sockets)


def host_cgroup(pid):
    """pid's cgroup on the host, as /proc/PID/cgroup names it (the memory controller's on
    cgroup v1, else the unified hierarchy's), and its memory limit and CPU quota there."""
    from clients import cgroup_dir, memory_limit
    d = cgroup_dir(pid, "memory")
    cpu = cgroup_dir(pid, "cpu")
    if os.path.exists(f"{cpu}/cpu.max"):
        with open(f"{cpu}/cpu.max") as f:
            quota = f.read().split()[0]
    else:
        with open(f"{cpu}/cpu.cfs_quota_us") as f:
            quota = f.read().strip()
    return d, int(memory_limit(pid)), quota


def balloon_pages(bundle, cid, what):
    """The guest kernel's count of pages its balloon driver gave (inflate) or took back."""
    r = bundle.cmd("exec", cid, "cat", "/proc/vmstat")
    assert r.returncode == 0, r.stderr
    counts = dict(line.split() for line in r.stdout.splitlines())
    return int(counts[f"balloon_{what}"])


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while not cond():
        assert time.time() < end, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_ps_pause_resume_events_update(bundle):
    """runc's ps, pause, resume, events --stats and update on a container in its microVM:
    ps lists the guest's pids of the container, pause freezes its cgroup in the guest (its
    output stops, state says paused) and resume thaws it, the stats are the guest cgroup's,
    update changes its limits there, says clearly that memory can't grow beyond the VM's
    boot RAM, and gives what a lower limit leaves over back through the balloon."""
    bundle.config.setdefault("annotations", {})["io.vessel.isolation"] = "vm"
    bundle.config["linux"].setdefault("resources", {})["memory"] = {"limit": 100 * MiB}
    bundle.config["linux"]["resources"]["cpu"] = {"quota": 90000, "period": 100000}
    bundle.sh("i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done")
    cid, r = bundle.create(timeout=BOOT)
    try:
        assert r.returncode == 0, r.stderr + console(bundle, cid)
        assert bundle.cmd("start", cid).returncode == 0
        wait_status(bundle, cid, "running", 10)
        out = bundle.path / f"{cid}.out"

        # on the host the VMM is in the container's cgroup (linux.cgroupsPath, here the
        # default), sized to the VM (100 MiB + the guest's 128 + the VMM's 64) with the
        # container's CPU quota
        vmm = state(bundle, cid)["pid"]
        cg, limit, quota = host_cgroup(vmm)
        path = bundle.config["linux"].get("cgroupsPath") or f"/vessel/{cid}"
        assert cg.endswith(path), (cg, path)
        assert limit == (100 + 128 + 64) * MiB and quota == "90000", (limit, quota)

        r = bundle.cmd("ps", "--format", "json", cid)
        assert r.returncode == 0, r.stderr
        pids = json.loads(r.stdout)
        assert pids and all(isinstance(p, int) and p > 0 for p in pids), r.stdout
        r = bundle.cmd("ps", cid)
        assert r.returncode == 0, r.stderr
        header, *rows = r.stdout.splitlines()
        # the guest's ps(1) is busybox's: PID USER COMMAND, the container's rows only (its
        # sleeps come and go between the two calls; its shell stays)
        assert "PID" in header.split(), r.stdout
        col = header.split().index("PID")
        shell = [int(row.split()[col]) for row in rows if "sh -c" in row]
        assert len(shell) == 1 and shell[0] in pids, (r.stdout, pids)
        assert all("sh -c" in row or "sleep" in row for row in rows), r.stdout

        t = time.time()
        r = bundle.cmd("pause", cid)
        print(f"pause took {time.time() - t:.2f} s")
        assert r.returncode == 0, r.stderr
        assert state(bundle, cid)["status"] == "paused"
        time.sleep(1)
        frozen = out.read_text()
        time.sleep(2)
        assert out.read_text() == frozen, "the container ran on while paused"
        r = bundle.cmd("resume", cid)
        assert r.returncode == 0, r.stderr
        assert state(bundle, cid)["status"] == "running"
        end = time.time() + 10
        while out.read_text() == frozen and time.time() < end:
            time.sleep(0.2)
        assert out.read_text() != frozen, "resume did not thaw the container"
        r = bundle.cmd("resume", cid)
        assert r.returncode != 0 and "not paused" in r.stderr, r.stderr

        r = bundle.cmd("events", "--stats", cid)
        assert r.returncode == 0, r.stderr
        ev = json.loads(r.stdout)
        assert ev["type"] == "stats" and ev["id"] == cid, ev
        mem = ev["data"]["memory"]["usage"]
        assert mem["usage"] > 0 and mem["limit"] == 100 * MiB, mem

        r = bundle.cmd("update", "--memory", "150M", "--cpu-quota", "50000", "--cpu-period",
                       "100000", cid)
        assert r.returncode == 0, r.stderr
        ev = json.loads(bundle.cmd("events", "--stats", cid).stdout)
        assert ev["data"]["memory"]["usage"]["limit"] == 150 * MiB, ev["data"]["memory"]
        # the quota holds the vCPUs on the host too; the host's memory stays the VM's
        assert host_cgroup(vmm)[1:] == ((100 + 128 + 64) * MiB, "50000"), host_cgroup(vmm)
        r = bundle.cmd("update", "--memory", "4G", cid)
        assert r.returncode != 0, r.stdout
        assert "fixed when it boots" in r.stderr and "in its microVM" in r.stderr, r.stderr
        ev = json.loads(bundle.cmd("events", "--stats", cid).stdout)
        assert ev["data"]["memory"]["usage"]["limit"] == 150 * MiB, "a refused update applied"
        assert state(bundle, cid)["status"] == "running"

        # a limit below the VM's size gives the rest back to the host through the balloon:
        # 228 MiB of RAM - (50 + 128) = 50 MiB, which the guest's driver hands over (its
        # /proc/vmstat counts the pages); a higher limit takes them back
        r = bundle.cmd("update", "--memory", "50M", cid)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: balloon_pages(bundle, cid, "inflate") >= 50 * 256, 60,
                 "the guest to inflate its balloon by 50 MiB")
        assert balloon_pages(bundle, cid, "deflate") == 0
        ev = json.loads(bundle.cmd("events", "--stats", cid).stdout)
        assert ev["data"]["memory"]["usage"]["limit"] == 50 * MiB, ev["data"]["memory"]
        r = bundle.cmd("update", "--memory", "150M", cid)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: balloon_pages(bundle, cid, "deflate") >= 50 * 256, 60,
                 "the guest to deflate its balloon")
        assert state(bundle, cid)["status"] == "running"
    finally:
        r = bundle.cmd("delete", "--force", cid, timeout=30)
    assert r.returncode == 0, r.stderr
    r = bundle.cmd("ps", cid)
    assert r.returncode != 0
    assert not os.path.exists(cg), cg


def test_vmm_killed_from_outside(bundle, vessel_vm):
    """A SIGKILL to the VMM: run gives 128+9, state says stopped, and delete leaves no
    process, socket or directory behind."""
    import signal
    bundle.sh("echo up; while :; do sleep 1; done")
    bundle.write()
    cid = bundle.new_id()
    p, _ = run_until_up(vessel_vm, bundle, cid, "--keep")
    try:
        s = state(bundle, cid)
        assert s["status"] == "running", s
        vmm = s["pid"]
        sockets = os.readlink(bundle.root / cid / "sockets")
        os.kill(vmm, signal.SIGKILL)
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + 9, p.returncode
    assert state(bundle, cid)["status"] == "stopped"
    r = bundle.cmd("delete", cid, timeout=30)
    assert r.returncode == 0, r.stderr
    end = time.time() + 10
    while host_pids_with(sockets) and time.time() < end:
        time.sleep(0.2)
    assert not host_pids_with(sockets), host_pids_with(sockets)
    assert not os.path.exists(f"/proc/{vmm}")
    assert not os.path.exists(sockets)
    assert not (bundle.root / cid).exists()


def test_podman_volume(podman_vm, tmp_path):
    """podman run -v hostdir:/mnt on vessel-vm: the directory is read and written from the
    guest, and podman's own bind mounts arrive too (/etc/hosts, /etc/hostname and
    /run/.containerenv as copies, /dev/shm as the guest's tmpfs)."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "hello").write_text("from the host\n")
    r = podman_vm("run", "--rm", "--network", "none", "--hostname", "vmc-podman", "-v",
                  f"{vol}:/mnt", "localhost/vessel-busybox:vm", "/bin/sh", "-c",
                  "cat /mnt/hello; echo from-podman > /mnt/written; "
                  "grep -q localhost /etc/hosts && echo hosts-ok; echo $(cat /etc/hostname); "
                  "test -e /run/.containerenv && echo containerenv-ok; "
                  "grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3", timeout=BOOT)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["from the host", "hosts-ok", "vmc-podman",
                                     "containerenv-ok", "tmpfs"], (r.stdout, r.stderr)
    assert (vol / "written").read_text() == "from-podman\n"
    assert not os.listdir("/run/vessel-vmc"), os.listdir("/run/vessel-vmc")


def test_podman_vmm_killed(podman_vm):
    """A SIGKILL to a podman container's VMM: podman sees exit code 137, and rm leaves no
    virtiofsd or socket directory."""
    import signal
    name = "vmk-" + os.urandom(3).hex()
    podman_vm.ok("run", "-d", "--name", name, "--network", "none",
                 "localhost/vessel-busybox:vm", "/bin/sh", "-c",
                 "while :; do sleep 1; done", timeout=BOOT)
    vmm = int(podman_vm.inspect(name, "{{.State.Pid}}"))
    assert vmm > 0
    os.kill(vmm, signal.SIGKILL)
    end = time.time() + 30
    while podman_vm.inspect(name, "{{.State.Status}}") != "exited" and time.time() < end:
        time.sleep(0.5)
    assert podman_vm.inspect(name, "{{.State.Status}}") == "exited"
    assert podman_vm.inspect(name, "{{.State.ExitCode}}") == "137"
    podman_vm.ok("rm", name, timeout=60)
    end = time.time() + 10
    while host_pids_with("virtiofsd") and time.time() < end:
        time.sleep(0.2)
    assert not host_pids_with("virtiofsd"), host_pids_with("virtiofsd")
    assert not os.listdir("/run/vessel-vmc"), os.listdir("/run/vessel-vmc")


def test_bind_mount_refusals(bundle, tmp_path):
    """What can't reach a microVM is refused at create, naming the mount, and leaves
    nothing: a ninth directory (each is a share with a virtiofsd), a device node."""
    bundle.config.setdefault("annotations", {})["io.vessel.isolation"] = "vm"
    base = list(bundle.config["mounts"])
    for i in range(9):
        (tmp_path / f"d{i}").mkdir()
        bundle.config["mounts"].append({"destination": f"/m{i}", "type": "bind",
                                        "source": str(tmp_path / f"d{i}")})
    n = len(base) + 8
    cid, r = bundle.create(timeout=60)
    assert r.returncode != 0
    assert f"mounts[{n}]: `{tmp_path}/d8` on `/m8`: at most 8 directories" in r.stderr, \
        r.stderr
    assert not (bundle.root / cid).exists()
    bundle.config["mounts"] = base + [{"destination": "/n", "type": "bind",
                                       "source": "/dev/null"}]
    cid, r = bundle.create(timeout=60)
    assert r.returncode != 0
    assert "`/dev/null` on `/n`: a character device can't reach a microVM" in r.stderr, \
        r.stderr
    assert not (bundle.root / cid).exists()
    assert not host_pids_with(str(bundle.root))
