"""Terminals of VM-isolated containers (docs/vm-containers.md, Terminals): the process's
pty is the guest's, and the host hands the caller one of its own as runc does: a pty
whose master goes to --console-socket (SCM_RIGHTS), or the caller's terminal for `exec
-t`; the bytes pass both ways untouched and a change of the window's size reaches the
guest's pty. Run in the emulated KVM host: each container boots a real Linux guest.
"""
import fcntl
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import termios
import time

import pytest

from clients import run_in_pty
from test_oci_exec import read_until, recv_fd
from test_vm_containers import BOOT, console, podman_vm, state, vessel_vm  # noqa: F401

pytestmark = pytest.mark.kvm

IMAGE = "localhost/vessel-busybox:vm"


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def console_socket(tmp_path):
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(BOOT)
    return path, srv


def receive_master(srv):
    conn, _ = srv.accept()
    with conn:
        name, master = recv_fd(conn)
    assert name == b"/dev/ptmx", name
    return master


def test_run_console_socket(bundle, vessel_vm, tmp_path):
    """vessel-vm run with process.terminal and --console-socket: the receiver gets a pty
    master; what it types reaches the container, whose stdio is a pty in the guest
    (/dev/pts/N); the size set on the master before the first line and a later resize are
    what `stty size` sees inside; output passes once through a line discipline (the
    guest's: the host's end is raw); the exit status is run's."""
    path, srv = console_socket(tmp_path)
    bundle.config["process"]["terminal"] = True
    bundle.sh("read a; echo got:$a; tty; stty size; read b; echo got:$b; stty size; exit 7")
    bundle.write()
    cid = bundle.new_id()
    p = subprocess.Popen([vessel_vm, "--root", str(bundle.root), "run", "--console-socket",
                          path, "--bundle", str(bundle.path), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    master = -1
    try:
        master = receive_master(srv)
        set_size(master, 33, 111)
        os.write(master, b"hello\n")
        out = read_until(master, b"33 111", timeout=BOOT)
        assert b"got:hello" in out, out + console(bundle, cid).encode()
        assert re.search(rb"/dev/pts/\d+", out), out
        assert b"33 111" in out, out
        set_size(master, 40, 132)
        os.write(master, b"again\n")
        out2 = read_until(master, b"40 132", timeout=60)
        assert b"got:again" in out2 and b"40 132" in out2, out2
        # the guest's pty made \n into \r\n; the host's raw slave added nothing
        assert b"got:hello\r\n" in out and b"\r\r\n" not in out + out2, out + out2
        _, err = p.communicate(timeout=60)
        assert p.returncode == 7, (p.returncode, err)
    finally:
        if master >= 0:
            os.close(master)
        srv.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not (bundle.root / cid).exists()


def test_run_on_our_terminal(bundle, vessel_vm):
    """vessel-vm run of a terminal bundle without a console socket, from a terminal: ours
    is the container's (raw meanwhile: the guest's pty echoes and ends lines), with its
    window; the exit status is run's."""
    bundle.config["process"]["terminal"] = True
    bundle.sh("read a; echo got:$a; stty size; exit 3")
    bundle.write()
    cid = bundle.new_id()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(vessel_vm, [vessel_vm, "--root", str(bundle.root), "run", "--bundle",
                             str(bundle.path), cid])
    try:
        set_size(fd, 20, 70)
        os.write(fd, b"typed\r")
        out = read_until(fd, b"20 70", timeout=BOOT)
        assert b"got:typed" in out and b"20 70" in out, out
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 3, out
    finally:
        os.close(fd)
    assert not (bundle.root / cid).exists()


def alive(pid):
    """pid runs (a zombie waiting for whoever adopted it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def running(bundle, vessel_vm):
    """A created and started container that prints `up` and sleeps: its id."""
    bundle.sh("echo up; while :; do sleep 1; done")
    bundle.write()
    cid = bundle.new_id()
    with open(bundle.path / "out", "w") as o, open(bundle.path / "err", "w") as e:
        p = subprocess.run([vessel_vm, "--root", str(bundle.root), "create", "--bundle",
                            str(bundle.path), cid], stdin=subprocess.DEVNULL, stdout=o,
                           stderr=e, timeout=BOOT)
    assert p.returncode == 0, (bundle.path / "err").read_text() + console(bundle, cid)
    r = bundle.cmd("start", cid, timeout=60)
    assert r.returncode == 0, r.stderr
    return cid


def test_exec_tty_and_console_socket(bundle, vessel_vm, tmp_path):
    """exec -t from a terminal: the process has a pty in the guest, gets our window's
    size (and a later change), what we type, and its exit status is exec's. exec
    --detach --console-socket (conmon's `podman exec -it`): the master comes to the
    socket and carries the process's terminal."""
    cid = running(bundle, vessel_vm)
    vm = [vessel_vm, "--root", str(bundle.root)]
    try:
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(vessel_vm, vm + ["exec", "-t", cid, "/bin/sh", "-c",
                                      "read a; echo got:$a; tty; stty size; read b; "
                                      "stty size; exit 5"])
        try:
            set_size(fd, 25, 90)
            os.write(fd, b"typed\r")
            out = read_until(fd, b"25 90", timeout=60)
            assert b"got:typed" in out and re.search(rb"/dev/pts/\d+", out), out
            assert b"25 90" in out, out
            set_size(fd, 50, 160)
            os.write(fd, b"more\r")
            out += read_until(fd, b"50 160", timeout=60)
            assert b"50 160" in out, out
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 5, out
        finally:
            os.close(fd)

        # signals to exec -t reach the process on the guest's pty, as without a terminal
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(vessel_vm, vm + ["exec", "-t", cid, "/bin/sh", "-c",
                                      "trap 'echo got-ALRM' ALRM; "
                                      "trap 'echo got-USR1; exit 8' USR1; echo ready; "
                                      "while :; do sleep 1; done"])
        try:
            out = read_until(fd, b"ready", timeout=60)
            assert b"ready" in out, out
            os.kill(pid, signal.SIGALRM)
            out += read_until(fd, b"got-ALRM", timeout=60)
            assert b"got-ALRM" in out, out
            os.kill(pid, signal.SIGUSR1)
            out += read_until(fd, b"got-USR1", timeout=60)
            assert b"got-USR1" in out, out
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 8, out
        finally:
            os.close(fd)

        path, srv = console_socket(tmp_path)
        pid_file = bundle.path / "exec.pid"
        # the relay left behind keeps exec's stdout and stderr: files, not run()'s pipes
        with open(bundle.path / "exec.err", "w+") as e:
            r = subprocess.run(vm + ["exec", "--detach", "--tty", "--console-socket", path,
                                     "--pid-file", str(pid_file), cid, "/bin/sh", "-c",
                                     "tty; read a; echo got:$a; exit 3"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=e,
                               timeout=60)
        assert r.returncode == 0, (bundle.path / "exec.err").read_text()
        master = receive_master(srv)
        srv.close()
        try:
            os.write(master, b"detached\n")
            out = read_until(master, b"got:detached", timeout=60)
            assert re.search(rb"/dev/pts/\d+", out) and b"got:detached" in out, out
        finally:
            os.close(master)
        # the relay that the pid file names ends with the process
        relay = int(pid_file.read_text())
        end = time.time() + 30
        while alive(relay) and time.time() < end:
            time.sleep(0.2)
        assert not alive(relay)
        assert state(bundle, cid)["status"] == "running"
    finally:
        r = bundle.cmd("delete", "--force", cid, timeout=30)
    assert r.returncode == 0, r.stderr


def test_podman_run_it(podman_vm):
    """podman run -it --runtime vessel-vm from a terminal: the shell in the guest has a
    pty, runs what is typed, and its exit status is podman's."""
    status, out = run_in_pty(podman_vm.argv("run", "-it", "--rm", "--network", "none", IMAGE,
                                            "/bin/sh"),
                             "tty; echo hi-$((6*7)); exit 4\r", timeout=BOOT,
                             env=podman_vm.env, cwd=podman_vm.work)
    assert re.search(r"/dev/pts/\d+", out), out
    assert "hi-42" in out, out
    assert status == 4, out


def test_podman_exec_it(podman_vm):
    """podman exec -it in a VM-isolated container run with -dt (conmon's exec --detach
    --tty --console-socket): the exec'd shell has a pty of its own in the guest, runs what
    is typed, and its exit status is podman's; a plain exec beside it needs no terminal."""
    name = "vmtty-" + os.urandom(3).hex()
    podman_vm.ok("run", "-dt", "--name", name, "--network", "none", IMAGE, "/bin/sh",
                 "-c", "while :; do sleep 1; done", timeout=BOOT)
    try:
        status, out = run_in_pty(podman_vm.argv("exec", "-it", name, "/bin/sh"),
                                 "tty; echo ex-$((2*21)); exit 6\r", timeout=120,
                                 env=podman_vm.env, cwd=podman_vm.work)
        assert re.search(r"/dev/pts/\d+", out), out
        assert "ex-42" in out, out
        assert status == 6, out
        r = podman_vm("exec", name, "/bin/sh", "-c", "tty; exit 2", timeout=120)
        assert r.returncode == 2 and "not a tty" in r.stdout, (r.returncode, r.stdout,
                                                                 r.stderr)
    finally:
        podman_vm("rm", "-f", "-t", "0", name, timeout=120)
