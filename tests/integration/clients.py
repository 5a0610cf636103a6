"""Real container clients with vessel as their OCI runtime: podman and containerd from Debian.

Each client gets a private directory (storage, state, sockets, config) and, for podman, a
private network namespace, so the tests touch none of the host's podman or containerd state
and its bridge and firewall rules vanish with the namespace. Both clients are started and
stopped here; CI starts no services. Config templates live in clients/ beside this file
(docs/kubernetes.md shows the same containerd config).
"""
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import pathlib
import pty
import selectors
import shutil
import signal
import string
import subprocess
import tarfile
import tempfile
import termios
import time
import uuid

from conftest import ROOT, run

TEMPLATES = pathlib.Path(__file__).resolve().parent / "clients"
CGROUP = pathlib.Path("/sys/fs/cgroup")


def render(template, dest, **values):
    text = string.Template((TEMPLATES / template).read_text()).substitute(**values)
    dest.write_text(text)
    return dest


def short_work_dir(prefix, under="/tmp"):
    """A private directory with a short path: conmon's attach socket lives below it and a
    Unix socket path has 108 bytes at most (under pytest's long tmp_path, podman run waits
    out its 20 s conmon timeout at every container exit, whatever the runtime)."""
    return pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir=under))


def busybox_rootfs(work, vessel):
    """The busybox-static rootfs that scripts/mkbundle.sh builds for the OCI tests."""
    r = run([str(ROOT / "scripts" / "mkbundle.sh"), str(work)], timeout=120,
            env={**os.environ, "VESSEL": vessel})
    assert r.returncode == 0, f"mkbundle.sh failed: {r.stderr}"
    return work / "rootfs"


def rootfs_tar(rootfs):
    """An uncompressed tar of the rootfs (symlinks kept as links), as bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(rootfs), arcname=".")
    return buf.getvalue()


def oci_archive(rootfs, dest, ref, user=None, cmd=("/bin/sh",)):
    """Writes an OCI image layout tarball with one layer (the rootfs), named ref for
    `ctr image import`, its processes run as user (the image's USER) when given, cmd its
    CMD. No registry is reachable, so the image is made here."""
    def add(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    def blob(tar, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        add(tar, f"blobs/sha256/{digest}", data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    layer = rootfs_tar(rootfs)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": list(cmd),
                   **({"User": user} if user else {})},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    with tarfile.open(dest, "w") as tar:
        layer_desc = blob(tar, gzip.compress(layer, mtime=0),
                          "application/vnd.oci.image.layer.v1.tar+gzip")
        config_desc = blob(tar, json.dumps(config).encode(),
                           "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}
        desc = blob(tar, json.dumps(manifest).encode(),
                    "application/vnd.oci.image.manifest.v1+json")
        desc["platform"] = {"architecture": "amd64", "os": "linux"}
        desc["annotations"] = {"io.containerd.image.name": ref,
                               "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}
        add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode())
    return dest


def mounts_under(path):
    """Mount points at or below path, deepest first."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: -p.count("/"))


def unmount_under(path):
    """Unmounts whatever a client left below path; lazily if it is still busy."""
    for point in mounts_under(path):
        if run(["umount", point], timeout=30).returncode != 0:
            run(["umount", "-l", point], timeout=30)
    left = mounts_under(path)
    assert not left, f"still mounted under {path}: {left}"


def processes_naming(needle):
    """Pids of processes whose command line contains needle (a test's private path)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry))
    return pids


def kill_processes_naming(needle, what):
    """Kills, by pid, the processes a test started that outlived it; says which."""
    pids = processes_naming(needle)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [f"{what} pid {pid}" for pid in pids]


def remove_cgroups(relative):
    """Removes a cgroup directory (and its empty children) from every hierarchy."""
    left = []
    for hierarchy in [CGROUP, *[p for p in CGROUP.iterdir() if p.is_dir()]]:
        top = hierarchy / relative
        if not top.is_dir():
            continue
        for d in sorted((p for p in [top, *top.rglob("*")] if p.is_dir()),
                        key=lambda p: -len(p.parts)):
            try:
                d.rmdir()
            except OSError:
                left.append(str(d))
    return left


def cgroup_dir(pid, controller):
    """The host's directory of pid's cgroup for a controller (cgroup v1, or v2 unified)."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, names, path in lines:
        if controller in names.split(","):
            return f"/sys/fs/cgroup/{controller}{path}"
    return "/sys/fs/cgroup" + next(path for hid, _, path in lines if hid == "0")


def memory_limit(pid):
    """pid's memory limit in bytes as its cgroup says (v1 limit_in_bytes, v2 memory.max)."""
    d = cgroup_dir(pid, "memory")
    name = "memory.limit_in_bytes" if os.path.exists(f"{d}/memory.limit_in_bytes") else "memory.max"
    with open(f"{d}/{name}") as f:
        return f.read().strip()


def counter_in(pid, path="/tmp/n"):
    """A number the container keeps writing to a file of its own, read through its root."""
    try:
        with open(f"/proc/{pid}/root{path}") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


COUNTER = "i=0; while true; do i=$((i + 1)); echo $i > /tmp/n; sleep 0.05; done"


def assert_frozen_then_running(pid, pause, resume):
    """pause() must stop the container's counter (it stays put for 0.5 s) and resume()
    start it again."""
    wait_for(lambda: counter_in(pid) > 2, what="the counter to start")
    pause()
    time.sleep(0.2)  # a write in flight lands
    frozen = counter_in(pid)
    time.sleep(0.5)
    assert counter_in(pid) == frozen, "the counter ran while paused"
    resume()
    wait_for(lambda: counter_in(pid) > frozen + 2, what="the counter to run after resume")


def wait_for(predicate, timeout=10, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def run_in_pty(argv, keys, timeout=30, env=None, cwd=None):
    """Runs argv with a pty as its controlling terminal (as a person at a shell would),
    types keys once the first output appears, and returns (exit status, all output).
    Never hangs: past timeout the process is killed and the test fails."""
    master, slave = pty.openpty()
    # a shell that reads a line at a time and echoes it, as a terminal user sees
    attrs = termios.tcgetattr(slave)
    attrs[3] |= termios.ECHO | termios.ICANON
    termios.tcsetattr(slave, termios.TCSANOW, attrs)

    def controlling_tty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            start_new_session=True, preexec_fn=controlling_tty)
    os.close(slave)
    out = b""
    typed = False
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{argv[0]} under a pty did not finish in {timeout} s; "
                                     f"output so far: {out.decode(errors='replace')!r}")
            if sel.select(min(left, 0.5 if not typed else left)):
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every slave side is closed
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            if not typed and (out or time.monotonic() > deadline - timeout + 3):
                # the shell prints its prompt first; a silent start still gets the keys
                time.sleep(0.2)
                os.write(master, keys.encode())
                typed = True
        status = proc.wait(timeout=max(1, deadline - time.monotonic()))
        return status, out.decode(errors="replace")
    finally:
        sel.close()
        os.close(master)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ------------------------------------------------------------------- network namespace
class NetNS:
    """A named network namespace (ip netns) with lo up: podman's bridge, veths and
    iptables rules are made inside it and die with it."""

    def __init__(self):
        self.name = f"vessel-clients-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.path = f"/run/netns/{self.name}"
        r = run(["ip", "netns", "add", self.name], timeout=30)
        assert r.returncode == 0, f"ip netns add: {r.stderr}"
        r = run(["ip", "-n", self.name, "link", "set", "lo", "up"], timeout=30)
        assert r.returncode == 0, f"ip link set lo up: {r.stderr}"

    def enter(self, *argv):
        """argv run in this namespace; only the network namespace changes (nsenter, not
        `ip netns exec`, which would also give it a mount namespace of its own)."""
        return ["nsenter", f"--net={self.path}", *argv]

    def delete(self):
        r = run(["ip", "netns", "delete", self.name], timeout=30)
        assert r.returncode == 0, f"ip netns delete {self.name}: {r.stderr}"


# ---------------------------------------------------------------------------- podman
class Podman:
    """podman with vessel as its runtime (--runtime), all state under work."""

    def __init__(self, vessel, netns):
        self.vessel = vessel
        self.work = short_work_dir("vessel-podman-")
        self.netns = netns
        work = self.work
        (work / "networks").mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(render("containers.conf", work / "containers.conf",
                                          work=work)),
            "CONTAINERS_STORAGE_CONF": str(render("storage.conf", work / "storage.conf",
                                                  work=work)),
        }

    def argv(self, *args):
        return self.netns.enter("podman", "--runtime", self.vessel, *args)

    def __call__(self, *args, timeout=60, **kw):
        # conmon drops an `oom` file in its working directory: keep it in work
        return run(self.argv(*args), timeout=timeout, env=self.env, cwd=self.work, **kw)

    def ok(self, *args, timeout=60, **kw):
        """Runs a podman command that must succeed; returns its stdout."""
        r = self(*args, timeout=timeout, **kw)
        assert r.returncode == 0, (f"podman {' '.join(args)} exited {r.returncode}:\n"
                                   f"{r.stderr}{r.stdout}")
        return r.stdout

    def import_image(self, rootfs, ref):
        # the tarball is bytes: run() is text-mode, so a binary pipe of its own
        p = subprocess.run(self.argv("import", "--change", "CMD /bin/sh", "-", ref),
                           input=rootfs_tar(rootfs), env=self.env, cwd=self.work,
                           capture_output=True, timeout=120)
        assert p.returncode == 0, f"podman import: {p.stderr.decode(errors='replace')}"

    def inspect(self, name, fmt):
        return self.ok("inspect", "--format", fmt, name).strip()

    def cleanup(self):
        """Removes every container and image, stops what podman left running and unmounts
        its storage. Returns what had to be forced, for the fixture to report."""
        problems = []
        r = self("rm", "--all", "--force", "--time", "0", timeout=120)
        if r.returncode != 0:
            problems.append(f"podman rm -af: {r.stderr.strip()}")
        r = self("rmi", "--all", "--force", timeout=120)
        if r.returncode != 0:
            problems.append(f"podman rmi -af: {r.stderr.strip()}")
        problems += kill_processes_naming(str(self.work), "leftover podman/conmon")
        unmount_under(self.work)
        shutil.rmtree(self.work)
        return problems


# ------------------------------------------------------------------------ containerd
class Containerd:
    """A containerd daemon of the test's own (root, state, socket), driven with ctr in a
    namespace of its own; containers run with `--runc-binary vessel`. Its directory is
    made under `under`, which must be a filesystem its overlayfs snapshotter can use."""

    def __init__(self, vessel, under="/tmp"):
        self.vessel = vessel
        self.work = work = short_work_dir("vessel-containerd-", under)
        self.namespace = f"vessel-test-{os.getpid()}"
        self.socket = work / "containerd.sock"
        self.config = render("containerd.toml", work / "containerd.toml", work=work,
                             vessel=vessel)
        (work / "fifo").mkdir(exist_ok=True)
        self.log = work / "containerd.log"
        with open(self.log, "w") as log:
            self.daemon = subprocess.Popen(["containerd", "--config", str(self.config)],
                                           stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                           start_new_session=True)
        try:
            wait_for(lambda: self.daemon.poll() is not None or
                     (self.socket.exists() and self.ctr("version", timeout=10).returncode == 0),
                     timeout=20, what="containerd's socket")
            assert self.daemon.poll() is None, f"containerd exited:\n{self.log_tail()}"
        except BaseException:
            self.stop()
            raise

    def log_tail(self, lines=30):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def ctr(self, *args, timeout=60, **kw):
        return run(["ctr", "--address", str(self.socket), "--namespace", self.namespace,
                    *args], timeout=timeout, **kw)

    def ok(self, *args, timeout=60, **kw):
        r = self.ctr(*args, timeout=timeout, **kw)
        assert r.returncode == 0, (f"ctr {' '.join(args)} exited {r.returncode}:\n"
                                   f"{r.stderr}{r.stdout}")
        return r.stdout

    def run_args(self):
        """ctr run's options that make vessel the runtime and keep state in work."""
        return ["--runc-binary", self.vessel, "--runc-root", str(self.work / "runtime"),
                "--fifo-dir", str(self.work / "fifo")]

    def table(self, *args):
        """Rows of a ctr listing (header dropped), each split on whitespace."""
        return [line.split() for line in self.ok(*args).splitlines()[1:] if line.strip()]

    def task_status(self, cid):
        """RUNNING, STOPPED, ... as `ctr task ls` says, None without a task."""
        for row in self.table("task", "ls"):
            if row[0] == cid:
                return row[2]
        return None

    def run_detached(self, image, cid, *argv, timeout=60):
        """`ctr run --detach` of argv with vessel; returns once the task runs."""
        self.ok("run", "--detach", *self.run_args(), image, cid, *argv, timeout=timeout)
        wait_for(lambda: self.task_status(cid) == "RUNNING", what=f"task {cid} to run")

    def forget(self, cid):
        """Kills and deletes a test's task, if it has one, and removes its container."""
        self.ctr("task", "kill", "--signal", "SIGKILL", cid, timeout=30)
        wait_for(lambda: self.ctr("task", "delete", cid, timeout=30).returncode == 0
                 or self.task_status(cid) is None,
                 timeout=15, interval=0.1, what=f"task {cid} to be deleted")
        self.ctr("container", "delete", cid, timeout=30)

    def remove_all(self):
        problems = []
        for row in self.table("task", "ls"):
            self.ctr("task", "kill", "--signal", "SIGKILL", row[0], timeout=30)
            try:
                wait_for(lambda: self.ctr("task", "delete", row[0], timeout=30).returncode
                         == 0 or not any(r[0] == row[0] for r in self.table("task", "ls")),
                         timeout=15, what=f"task {row[0]} to go")
            except AssertionError as e:
                self.ctr("task", "delete", "--force", row[0], timeout=30)
                problems.append(str(e))
        for row in self.table("container", "ls"):
            r = self.ctr("container", "delete", row[0], timeout=30)
            if r.returncode != 0:
                problems.append(f"ctr container delete {row[0]}: {r.stderr.strip()}")
        for row in self.table("image", "ls"):
            self.ctr("image", "remove", row[0], timeout=30)
        return problems

    def stop(self):
        """Deletes what the tests left, stops the daemon and its shims, unmounts, removes the
        namespace's cgroups. Returns what had to be forced."""
        problems = []
        if self.daemon.poll() is None:
            try:
                problems += self.remove_all()
            except (AssertionError, subprocess.TimeoutExpired) as e:
                problems.append(f"cleanup through ctr failed: {e}")
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
                problems.append("containerd did not stop on SIGTERM")
        # a shim outlives containerd by design; ours name our socket on their command line
        problems += kill_processes_naming(str(self.socket), "leftover shim")
        unmount_under(self.work)
        left = remove_cgroups(self.namespace)
        if left:
            problems.append(f"cgroups left: {left}")
        shutil.rmtree(self.work)
        return problems


@contextlib.contextmanager
def containerd_with_images(vessel, work, images, under="/tmp"):
    """A Containerd whose images (ref: oci_archive's keyword arguments) are the busybox
    rootfs, imported; stopped afterwards, failing if anything had to be forced."""
    rootfs = busybox_rootfs(work / "bundle", vessel)
    archives = [oci_archive(rootfs, work / f"image{i}.tar", ref, **kw)
                for i, (ref, kw) in enumerate(images.items())]
    daemon = Containerd(vessel, under)
    try:
        for archive in archives:
            daemon.ok("image", "import", str(archive), timeout=120)
        yield daemon
    finally:
        problems = daemon.stop()
        assert not problems, f"containerd left things behind: {problems}"


def container_ids(containerd):
    """A generator for an `ids` fixture: yields new(), which gives a fresh container id;
    each one's task and container are removed afterwards."""
    made = []

    def new():
        made.append(f"vt{len(made)}-{int(time.time() * 1000) % 10**8}")
        return made[-1]

    yield new
    for cid in made:
        containerd.forget(cid)
