"""exec, ps, pause/resume, update, events, kill --all and terminals: what podman and
containerd's shim call while a container runs."""
import array
import json
import os
import pty
import select
import socket
import subprocess
import time


def running(bundle, *extra_mounts):
    bundle.args("sleep", "60")
    cid, r = bundle.create("--pid-file", str(bundle.path / "pid"))
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    return cid, int((bundle.path / "pid").read_text())


def test_exec_joins_every_namespace_and_the_cgroup(bundle):
    cid, pid = running(bundle)
    r = bundle.cmd("exec", cid, "sh", "-c",
                   "for n in pid net ipc uts mnt cgroup; do "
                   "[ $(readlink /proc/self/ns/$n) = $(readlink /proc/1/ns/$n) ] && echo same-$n; "
                   "done; hostname; echo pid=$$; cat /proc/self/cgroup | grep memory")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    for n in ("pid", "net", "ipc", "uts", "mnt", "cgroup"):
        assert f"same-{n}" in lines
    assert "vessel" in lines and "pid=1" not in lines
    host_cg = [l for l in open(f"/proc/{pid}/cgroup") if ":memory:" in l][0]
    assert "vessel/" + cid in host_cg


def test_exec_exit_status_and_flags(bundle):
    cid, _ = running(bundle)
    assert bundle.cmd("exec", cid, "sh", "-c", "exit 42").returncode == 42
    r = bundle.cmd("exec", "-e", "FOO=bar", "--cwd", "/tmp", "-u", "1000:1001", "-g", "2000",
                   cid, "sh", "-c", 'echo $FOO; pwd; id -u; id -g; id -G')
    assert r.stdout.split() == ["bar", "/tmp", "1000", "1001", "1001", "2000"], r.stderr


def test_exec_process_file(bundle, tmp_path):
    cid, _ = running(bundle)
    proc = {"args": ["sh", "-c", "echo from-file $X; exit 3"], "cwd": "/", "env": ["X=y"],
            "user": {"uid": 0, "gid": 0}, "terminal": False}
    (tmp_path / "p.json").write_text(json.dumps(proc))
    r = bundle.cmd("exec", "--process", str(tmp_path / "p.json"), cid)
    assert r.returncode == 3 and r.stdout == "from-file y\n", r.stderr
    (tmp_path / "bad.json").write_text(json.dumps({"args": [], "cwd": "/",
                                                   "user": {"uid": 0, "gid": 0}}))
    r = bundle.cmd("exec", "--process", str(tmp_path / "bad.json"), cid)
    assert r.returncode != 0 and "process.args: must be a non-empty array" in r.stderr


def test_exec_detach_with_pid_file(bundle):
    cid, _ = running(bundle)
    pidf = bundle.path / "exec.pid"
    # the detached process keeps our stdio: a pipe would wait for it to end
    with open(bundle.path / "exec.err", "w") as errf:
        r = bundle.cmd("exec", "-d", "--pid-file", str(pidf), cid, "sleep", "30",
                       stdout=subprocess.DEVNULL, stderr=errf)
    assert r.returncode == 0, (bundle.path / "exec.err").read_text()
    epid = int(pidf.read_text())
    assert "sleep" in open(f"/proc/{epid}/cmdline").read()
    pids = json.loads(bundle.cmd("ps", "--format", "json", cid).stdout)
    assert epid in pids and len(pids) == 2


def test_exec_in_a_stopped_or_missing_container(bundle):
    r = bundle.args("true").run("--keep")
    cid = bundle.ids[-1]
    r = bundle.cmd("exec", cid, "true")
    assert r.returncode != 0 and "container not running" in r.stderr
    r = bundle.cmd("exec", "nosuch", "true")
    assert r.returncode != 0 and "does not exist" in r.stderr
    cid2, _ = running(bundle)
    r = bundle.cmd("exec", cid2, "no-such-binary")
    assert r.returncode != 0 and "not found" in r.stderr


def test_exec_runs_under_the_containers_seccomp_profile(bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 28}]}
    cid, _ = running(bundle)
    r = bundle.cmd("exec", cid, "mkdir", "/tmp/x")
    assert r.returncode != 0 and "No space left on device" in r.stderr


def test_ps_table_and_json(bundle):
    cid, pid = running(bundle)
    assert json.loads(bundle.cmd("ps", "--format", "json", cid).stdout) == [pid]
    r = bundle.cmd("ps", cid)
    lines = r.stdout.splitlines()
    assert "PID" in lines[0].split() and len(lines) == 2 and str(pid) in lines[1].split()


def test_pause_and_resume(bundle):
    cid, pid = running(bundle)
    assert bundle.cmd("pause", cid).returncode == 0
    assert json.loads(bundle.cmd("state", cid).stdout)["status"] == "paused"
    freezer = open(f"/sys/fs/cgroup/freezer/vessel/{cid}/freezer.state").read().strip()
    assert freezer == "FROZEN"
    r = bundle.cmd("pause", cid)
    assert r.returncode != 0 and "paused" in r.stderr
    assert bundle.cmd("resume", cid).returncode == 0
    assert json.loads(bundle.cmd("state", cid).stdout)["status"] == "running"
    assert open(f"/sys/fs/cgroup/freezer/vessel/{cid}/freezer.state").read().strip() == "THAWED"
    r = bundle.cmd("resume", cid)
    assert r.returncode != 0 and "not paused" in r.stderr


def test_update_flags_and_resources_file(bundle):
    cid, _ = running(bundle)
    r = bundle.cmd("update", "--memory", "64M", "--pids-limit", "50", "--cpu-quota", "20000",
                   "--cpu-period", "100000", cid)
    assert r.returncode == 0, r.stderr
    d = "/sys/fs/cgroup"
    assert open(f"{d}/memory/vessel/{cid}/memory.limit_in_bytes").read().strip() == str(64 << 20)
    assert open(f"{d}/pids/vessel/{cid}/pids.max").read().strip() == "50"
    assert open(f"{d}/cpu/vessel/{cid}/cpu.cfs_quota_us").read().strip() == "20000"
    r = bundle.cmd("update", "--resources", "-", cid,
                   input=json.dumps({"pids": {"limit": 77}, "cpu": {"shares": 256}}))
    assert r.returncode == 0, r.stderr
    assert open(f"{d}/pids/vessel/{cid}/pids.max").read().strip() == "77"
    assert open(f"{d}/cpu/vessel/{cid}/cpu.shares").read().strip() == "256"
    r = bundle.cmd("update", "--resources", "-", cid, input='{"pids": {"limit": "x"}}')
    assert r.returncode != 0 and "resources.pids.limit" in r.stderr
    r = bundle.cmd("update", "--memory", "lots", cid)
    assert r.returncode != 0 and "--memory" in r.stderr


def test_events_stats(bundle):
    cid, _ = running(bundle)
    r = bundle.cmd("events", "--stats", cid)
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    assert ev["data"]["pids"]["current"] >= 1
    assert ev["data"]["memory"]["usage"]["usage"] > 0


def test_kill_all(bundle):
    cid, pid = running(bundle)
    r = bundle.cmd("exec", "-d", cid, "sleep", "30", stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    assert r.returncode == 0
    assert len(json.loads(bundle.cmd("ps", "--format", "json", cid).stdout)) == 2
    assert bundle.cmd("kill", "--all", cid, "KILL").returncode == 0
    deadline = time.time() + 5
    while json.loads(bundle.cmd("ps", "--format", "json", cid).stdout) and time.time() < deadline:
        time.sleep(0.05)
    assert json.loads(bundle.cmd("ps", "--format", "json", cid).stdout) == []


def recv_fd(conn):
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(64, socket.CMSG_LEN(fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
    return msg, fds[0]


def read_until(fd, needle, timeout=10):
    out = b""
    deadline = time.time() + timeout
    while needle not in out and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_console_socket_receives_the_pty_master(bundle, tmp_path):
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    bundle.config["process"]["terminal"] = True
    bundle.sh("tty; read line; echo got:$line; stty size")
    bundle.config["process"]["consoleSize"] = {"height": 33, "width": 111}
    cid, r = bundle.create("--console-socket", sock_path)
    assert r.returncode == 0, r.stderr
    srv.settimeout(10)
    conn, _ = srv.accept()
    name, master = recv_fd(conn)
    assert name == b"/dev/ptmx"
    assert bundle.cmd("start", cid).returncode == 0
    os.write(master, b"hello\n")
    out = read_until(master, b"33 111")
    os.close(master)
    assert b"/dev/pts/0" in out and b"got:hello" in out and b"33 111" in out, out


def test_run_with_a_terminal_attaches_to_ours(bundle):
    bundle.config["process"]["terminal"] = True
    bundle.sh("tty; read line; echo got:$line; exit 9").write()
    cid = bundle.new_id()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(bundle.vessel, [bundle.vessel, "--root", str(bundle.root), "run", "--bundle",
                                 str(bundle.path), cid])
    try:
        out = read_until(fd, b"/dev/pts/0")
        os.write(fd, b"typed\r")
        out += read_until(fd, b"got:typed")
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 9, out
        assert b"got:typed" in out, out
    finally:
        os.close(fd)


def test_exec_with_a_terminal(bundle):
    cid, _ = running(bundle)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(bundle.vessel, [bundle.vessel, "--root", str(bundle.root), "exec", "-t", cid,
                                 "sh", "-c", "tty; exit 4"])
    try:
        out = read_until(fd, b"/dev/pts/")
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 4, out
        assert b"/dev/pts/" in out
    finally:
        os.close(fd)
