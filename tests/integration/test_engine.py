"""`vessel container ...`: containers from images in a test store, run by vessel's own
runtime (docs/engine.md). No KVM. Images are made here from the busybox rootfs the OCI
tests use, one layer, with the image config each test needs.

Every engine command runs in a network and mount namespace of the module's own (a holder
process made by unshare, as in test_network.py): the default network's bridge, the veths,
the port rules and the overlay mounts never touch the host's, and go with the holder."""
import gzip
import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tarfile
import time

import pytest

from conftest import run
from clients import busybox_rootfs, processes_naming, rootfs_tar, run_in_pty, unmount_under

LOCK = "/tmp/vessel-cgroup-tests.lock"


def image_archive(layer, dest, ref, config):
    def add(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    def blob(tar, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        add(tar, f"blobs/sha256/{digest}", data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    cfg = {"architecture": "amd64", "os": "linux", "config": config,
           "rootfs": {"type": "layers",
                      "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
    with tarfile.open(dest, "w") as tar:
        layer_desc = blob(tar, gzip.compress(layer, mtime=0),
                          "application/vnd.oci.image.layer.v1.tar+gzip")
        config_desc = blob(tar, json.dumps(cfg).encode(),
                           "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}
        desc = blob(tar, json.dumps(manifest).encode(),
                    "application/vnd.oci.image.manifest.v1+json")
        desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
        add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode())
    return dest


PLAIN = "localhost/engine-plain:1"
CONFIGURED = "localhost/engine-conf:1"


def holder_namespaces():
    """A process in a new network and mount namespace (lo up), and the nsenter prefix."""
    for tool in ("unshare", "nsenter", "ip", "iptables-save", "tc", "flock"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: scripts/deps.sh installs it", pytrace=False)
    if not os.path.exists("/usr/lib/cni/bridge"):
        pytest.fail("containernetworking-plugins is missing: scripts/deps.sh installs it",
                    pytrace=False)
    holder = subprocess.Popen(["unshare", "-n", "-m", "--propagation", "private",
                               "sleep", "infinity"])
    deadline = time.time() + 5
    me = os.readlink("/proc/self/ns/net")
    while os.readlink(f"/proc/{holder.pid}/ns/net") == me:
        assert time.time() < deadline, "unshare did not make a netns"
        time.sleep(0.01)
    enter = ["nsenter", "-t", str(holder.pid), "-n", "-m"]
    assert run(enter + ["ip", "link", "set", "lo", "up"]).returncode == 0
    return holder, enter


@pytest.fixture(scope="module")
def env(vessel, tmp_path_factory):
    """A store holding PLAIN (Cmd /bin/sh) and CONFIGURED (Entrypoint, Cmd, Env,
    WorkingDir, a User by name that its own /etc/passwd defines, StopSignal, a Volume,
    ExposedPorts)."""
    holder, enter = holder_namespaces()
    work = tmp_path_factory.mktemp("engine")
    rootfs = busybox_rootfs(work / "bundle", vessel)
    etc = rootfs / "etc"
    etc.mkdir(exist_ok=True)
    with open(etc / "passwd", "a") as f:
        f.write("appuser:x:1234:2345::/home/app:/bin/sh\n")
    with open(etc / "group", "a") as f:
        f.write("appgroup:x:3456:\n")
    (rootfs / "srv" / "app").mkdir(parents=True, exist_ok=True)
    # CONFIGURED's Volume: the new volume takes this owner
    (rootfs / "srv" / "data").mkdir(parents=True, exist_ok=True)
    os.chown(rootfs / "srv" / "data", 1234, 2345)
    layer = rootfs_tar(rootfs)
    store, state = work / "store", work / "state"
    for ref, config in [
        (PLAIN, {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}),
        (CONFIGURED, {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=from-image"],
                      "Entrypoint": ["/bin/sh", "-c"],
                      "Cmd": ['echo "$GREETING $(pwd) $(id -u):$(id -g)"'],
                      "WorkingDir": "/srv/app", "User": "appuser:appgroup",
                      "StopSignal": "SIGUSR1", "Volumes": {"/srv/data": {}},
                      "ExposedPorts": {"8080/tcp": {}}}),
    ]:
        tar = image_archive(layer, work / (ref.split("/")[1].replace(":", "-") + ".tar"),
                            ref, config)
        r = run([vessel, "image", "load", "--store", str(store), "--name", ref, str(tar)],
                timeout=120)
        assert r.returncode == 0, r.stderr
    e = {"vessel": vessel, "store": store, "state": state, "enter": enter}
    yield e
    # whatever a failed test left: containers (their networks with them), then mounts
    for d in (store / "containers").glob("*") if (store / "containers").exists() else []:
        ctr(e, "rm", "-f", d.name, timeout=120)
    for d in (store / "containers").glob("*") if (store / "containers").exists() else []:
        run(enter + ["flock", LOCK, vessel, "--root", str(state), "delete", "--force",
                     d.name], timeout=120)
    run(enter + ["sh", "-c", f"grep -o ' {store}[^ ]*' /proc/self/mounts | "
                 "xargs -r -n1 umount -l"], timeout=60)
    holder.kill()
    holder.wait()
    unmount_under(store)


def ctr(env, *args, timeout=300):
    return run(env["enter"] + ["flock", LOCK, env["vessel"], "--root", str(env["state"]),
                               "container", "--store", str(env["store"]), *args],
               timeout=timeout)


def sh(env, cmd, timeout=60):
    """A shell command on the namespaces' host side."""
    return run(env["enter"] + ["sh", "-c", cmd], timeout=timeout)


def ok(env, *args, **kw):
    r = ctr(env, *args, **kw)
    assert r.returncode == 0, f"{args}: {r.stderr}"
    return r


def test_run_rm_echo(env):
    r = ok(env, "run", "--rm", PLAIN, "echo", "hi")
    assert r.stdout == "hi\n"
    assert not list((env["store"] / "containers").glob("*/record.json"))


def test_image_config_is_honoured(env):
    r = ok(env, "run", "--rm", CONFIGURED)
    assert r.stdout == "from-image /srv/app 1234:3456\n"


def test_env_workdir_user_override(env):
    r = ok(env, "run", "--rm", "-e", "GREETING=over", "-w", "/tmp", "--user", "0:0",
           CONFIGURED)
    assert r.stdout == "over /tmp 0:0\n"
    # a CMD replaces the image's Cmd and keeps its Entrypoint
    r = ok(env, "run", "--rm", "--user", "appuser", CONFIGURED, "echo $(id -u):$(id -g)")
    assert r.stdout == "1234:2345\n"


def test_stop_signal_volumes_and_exposed_ports_of_the_image(env):
    # CONFIGURED's Entrypoint is sh -c: the CMD is the script; its user is appuser, the
    # owner of the image's /srv/data
    ok(env, "run", "-d", "--name", "conf", "--network", "none", CONFIGURED,
       "trap 'echo got-usr1; exit 0' USR1; grep -c ' /srv/data ' /proc/mounts; "
       "touch /srv/data/w && echo writable; echo ready; while :; do sleep 0.1; done")
    try:
        wait_log(env, "conf", "ready")
        log = ctr(env, "logs", "conf").stdout
        assert "1\nwritable\n" in log, log
        info = json.loads(ok(env, "inspect", "conf").stdout)
        assert info["stop_signal"] == "SIGUSR1"
        assert info["config"]["annotations"]["org.opencontainers.image.exposedPorts"] == \
            "8080/tcp"
        t0 = time.time()
        ok(env, "stop", "conf")
        assert time.time() - t0 < 8  # heeded, not killed after the 10 s
        assert "got-usr1" in ctr(env, "logs", "conf").stdout
    finally:
        ctr(env, "rm", "-f", "conf")


def test_a_user_name_is_looked_up_inside_the_image_only(env, tmp_path):
    """An image whose /etc/passwd is an absolute link (the loader lets those in: inside a
    root they mean the root's own path): followed on the host's side it would be the
    host's /etc/passwd; resolved inside the root it is a loop, and the name is not found."""
    rootfs = busybox_rootfs(tmp_path / "bundle", env["vessel"])
    (rootfs / "etc" / "passwd").unlink()
    os.symlink("/etc/passwd", rootfs / "etc" / "passwd")
    tar = image_archive(rootfs_tar(rootfs), tmp_path / "hostile.tar", "localhost/hostile:1",
                        {"Cmd": ["/bin/true"], "User": "daemon"})
    r = run([env["vessel"], "image", "load", "--store", str(env["store"]), str(tar)],
            timeout=120)
    assert r.returncode == 0, r.stderr
    with open("/etc/passwd") as f:
        assert any(line.startswith("daemon:") for line in f), "the host has no daemon user"
    r = ctr(env, "run", "--rm", "--network", "none", "localhost/hostile:1")
    assert r.returncode != 0 and "daemon" in r.stderr and "/etc/passwd" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_volumes_ro_and_rw(env, tmp_path):
    host = tmp_path / "vol"
    host.mkdir()
    (host / "in").write_text("from-host\n")
    r = ok(env, "run", "--rm", "-v", f"{host}:/data", PLAIN, "sh", "-c",
           "cat /data/in; echo out > /data/out")
    assert r.stdout == "from-host\n"
    assert (host / "out").read_text() == "out\n"
    r = ctr(env, "run", "--rm", "-v", f"{host}:/data:ro", PLAIN, "sh", "-c",
            "echo x > /data/ro-write")
    assert r.returncode != 0
    assert not (host / "ro-write").exists()


def test_memory_lands_in_the_cgroup(env):
    r = ok(env, "run", "--rm", "--memory", "64M", PLAIN, "sh", "-c",
           "cat /sys/fs/cgroup/memory.max 2>/dev/null || "
           "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.stdout.strip() == str(64 << 20)


def test_etc_files_are_written(env):
    r = ok(env, "run", "--rm", "--name", "etc-test", PLAIN, "sh", "-c",
           "cat /etc/hostname; grep -c localhost /etc/hosts; cat /etc/resolv.conf")
    lines = r.stdout.splitlines()
    assert len(lines[0]) == 12 and int(lines[1]) >= 1
    assert "127.0.0.53" not in r.stdout


def test_detached_logs_exec_stop_rm_and_ls_after_the_engine_is_gone(env):
    ok(env, "run", "-d", "--name", "bg", PLAIN, "sh", "-c",
       "echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done")
    deadline = time.time() + 60
    while "started" not in ctr(env, "logs", "bg").stdout:
        assert time.time() < deadline, "no output in the log"
        time.sleep(0.2)
    # each command is a new engine process: the state is the record and the runtime's
    ls = ok(env, "ls").stdout
    assert any(line.split()[1:2] == ["bg"] and line.endswith("running")
               for line in ls.splitlines()), ls
    assert ok(env, "exec", "bg", "echo", "inside").stdout == "inside\n"
    r = ctr(env, "rm", "bg")
    assert r.returncode != 0 and "stop it first" in r.stderr
    ok(env, "stop", "bg")
    ls = ok(env, "ls").stdout
    assert any(line.split()[1:2] == ["bg"] and line.endswith("exited")
               for line in ls.splitlines()), ls
    assert "bye" in ctr(env, "logs", "bg").stdout
    info = json.loads(ok(env, "inspect", "bg").stdout)
    assert info["name"] == "bg" and info["image"] == PLAIN
    ok(env, "rm", "bg")
    assert "bg" not in ok(env, "ls").stdout


def ctr_argv(env, *args):
    return env["enter"] + ["flock", LOCK, env["vessel"], "--root", str(env["state"]),
                           "container", "--store", str(env["store"]), *args]


def test_run_and_exec_take_a_terminal_with_t_and_stdin_with_i(env):
    # -it: the container's shell has a pty of its own, reads what is typed on ours
    status, out = run_in_pty(ctr_argv(env, "run", "-it", "--rm", "--network", "none", PLAIN,
                                      "sh", "-c", "tty; read a; echo got:$a; exit 3"),
                             "typed\r", timeout=120)
    assert status == 3 and "got:typed" in out, out
    assert re.search(r"/dev/pts/\d+", out), out
    # without -t: no terminal; without -i: stdin is /dev/null, not ours
    r = run(ctr_argv(env, "run", "--rm", "--network", "none", PLAIN, "sh", "-c",
                     "tty; cat; echo end"), input="ours\n", timeout=120)
    assert r.stdout == "not a tty\nend\n", (r.stdout, r.stderr)
    r = run(ctr_argv(env, "run", "-i", "--rm", "--network", "none", PLAIN, "cat"),
            input="ours\n", timeout=120)
    assert r.returncode == 0 and r.stdout == "ours\n", (r.stdout, r.stderr)

    ok(env, "run", "-d", "--name", "termx", "--network", "none", PLAIN, "sleep", "1000")
    try:
        status, out = run_in_pty(ctr_argv(env, "exec", "-it", "termx", "sh", "-c",
                                          "tty; read a; echo got:$a; exit 4"),
                                 "again\r", timeout=120)
        assert status == 4 and "got:again" in out and re.search(r"/dev/pts/\d+", out), out
        r = run(ctr_argv(env, "exec", "termx", "cat"), input="ours\n", timeout=60)
        assert r.returncode == 0 and r.stdout == "", (r.stdout, r.stderr)
        r = run(ctr_argv(env, "exec", "-i", "termx", "cat"), input="ours\n", timeout=60)
        assert r.returncode == 0 and r.stdout == "ours\n", (r.stdout, r.stderr)
    finally:
        ctr(env, "rm", "-f", "termx")


def test_exec_flags_and_exit_status(env):
    ok(env, "run", "-d", "--name", "flags", "--network", "none", PLAIN, "sleep", "1000")
    try:
        # podman's exec flags; a user by name from the container's own /etc/passwd
        r = ok(env, "exec", "-e", "A=b", "-w", "/tmp", "-u", "appuser", "flags", "sh", "-c",
               'echo "$A $(pwd) $(id -u):$(id -g)"')
        assert r.stdout == "b /tmp 1234:2345\n", r.stdout
        r = ok(env, "exec", "-u", "appuser:appgroup", "flags", "id", "-g")
        assert r.stdout == "3456\n", r.stdout
        r = ctr(env, "exec", "-u", "nobody-here", "flags", "true")
        assert r.returncode != 0 and "`nobody-here`: not in the image's /etc/passwd" in r.stderr
        # a process's own status 2 is passed on, not taken for a usage error
        for argv in (["exec", "flags"], ["run", "--rm", "--network", "none", PLAIN]):
            r = ctr(env, *argv, "sh", "-c", "exit 2")
            assert r.returncode == 2 and r.stderr == "", (argv, r.stderr)
    finally:
        ctr(env, "rm", "-f", "flags")


def test_entrypoint_hostname_and_read_only(env):
    # CONFIGURED's Entrypoint is sh -c with a Cmd: --entrypoint replaces both, as docker's
    r = ok(env, "run", "--rm", "--network", "none", "--entrypoint", "/bin/echo", CONFIGURED,
           "a", "b")
    assert r.stdout == "a b\n", r.stdout
    r = ok(env, "run", "--rm", "--network", "none", "--entrypoint", "/bin/echo", CONFIGURED)
    assert r.stdout == "\n", r.stdout
    r = ok(env, "run", "--rm", "--network", "none", "--entrypoint", '["/bin/sh", "-c"]',
           PLAIN, "echo $((6*7))")
    assert r.stdout == "42\n", r.stdout
    r = ok(env, "run", "--rm", "--network", "none", "--entrypoint", "", CONFIGURED, "echo",
           "none")
    assert r.stdout == "none\n", r.stdout
    # the kernel's, /etc/hostname and the container's own line in /etc/hosts
    r = ok(env, "run", "--rm", "--network", "none", "--hostname", "web.example", PLAIN, "sh",
           "-c", "hostname; cat /etc/hostname; grep -c web.example /etc/hosts")
    assert r.stdout.split() == ["web.example", "web.example", "1"], r.stdout
    # a read-only root, with podman's writable tmpfs where programs expect to write
    r = ctr(env, "run", "--rm", "--network", "none", "--read-only", PLAIN, "sh", "-c",
            "touch /tmp/a /var/tmp/a /run/a && echo writable; touch /a")
    assert r.returncode != 0 and r.stdout == "writable\n", (r.stdout, r.stderr)
    assert "Read-only file system" in r.stderr, r.stderr


def test_logs_follow_streams_until_the_container_ends(env):
    ok(env, "run", "-d", "--name", "follow", "--network", "none", PLAIN, "sh", "-c",
       "echo first; sleep 5; echo last")
    try:
        p = subprocess.Popen(ctr_argv(env, "logs", "-f", "follow"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            # a line written while the container runs arrives before its end
            assert p.stdout.readline() == "first\n"
            assert p.poll() is None, "logs -f ended while the container runs"
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0 and out == "last\n", (out, err)
        # once it has ended, -f gives what there is and returns
        r = ok(env, "logs", "-f", "follow", timeout=30)
        assert r.stdout == "first\nlast\n", r.stdout
    finally:
        ctr(env, "rm", "-f", "follow")


def test_stop_kills_what_ignores_the_stop_signal(env):
    ok(env, "run", "-d", "--name", "stubborn", PLAIN, "sh", "-c",
       "trap '' TERM; echo ready; while :; do sleep 0.1; done")
    deadline = time.time() + 60
    while "ready" not in ctr(env, "logs", "stubborn").stdout:
        assert time.time() < deadline
        time.sleep(0.2)
    t0 = time.time()
    ok(env, "stop", "-t", "1", "stubborn")
    assert time.time() - t0 < 30
    assert "exited" in ok(env, "ls").stdout
    ok(env, "rm", "stubborn")


def test_two_containers_share_lower_layers_not_writes(env):
    ok(env, "run", "-d", "--name", "a", PLAIN, "sh", "-c",
       "echo a > /mine; while :; do sleep 0.1; done")
    ok(env, "run", "-d", "--name", "b", PLAIN, "sh", "-c",
       "while :; do sleep 0.1; done")
    try:
        deadline = time.time() + 60
        while ctr(env, "exec", "a", "cat", "/mine").stdout != "a\n":
            assert time.time() < deadline
            time.sleep(0.2)
        assert ctr(env, "exec", "b", "cat", "/mine").returncode != 0
        ia = ok(env, "exec", "a", "stat", "-c", "%i", "/bin/busybox").stdout
        ib = ok(env, "exec", "b", "stat", "-c", "%i", "/bin/busybox").stdout
        assert ia == ib
    finally:
        ctr(env, "rm", "-f", "a")
        ctr(env, "rm", "-f", "b")


@pytest.mark.parametrize("args,needle", [
    (["run", "--rm", "localhost/nope:1"], "nope"),
    (["run", "-e", "=x", PLAIN], "-e"),
    (["run", "-v", "relative:/x", PLAIN], "-v"),
    (["run", "-v", "/tmp:/x:bogus", PLAIN], "-v"),
    (["run", "--memory", "lots", PLAIN], "--memory"),
    (["run", "-p", "[::1:80:80", PLAIN], "-p `[::1:80:80`"),
    (["run", "-p", "[10.0.0.1]:80:80", PLAIN], "-p `[10.0.0.1]:80:80`"),
    (["run", "-p", "::1:80:80", PLAIN], "-p `::1:80:80`"),
    (["rm", "no-such-container"], "no container"),
    (["run", "--cap-add", "CAP_FLY", PLAIN], "--cap-add `CAP_FLY`"),
    (["run", "--cap-drop", "", PLAIN], "--cap-drop"),
    (["run", "--sysctl", "net.core.somaxconn", PLAIN], "--sysctl `net.core.somaxconn`"),
    (["exec", "-w", "tmp", "x", "true"], "-w `tmp`"),
    (["run", "-w", "tmp", PLAIN], "-w `tmp`"),
    (["run", "--hostname", "a_b", PLAIN], "--hostname `a_b`"),
    (["run", "--entrypoint", "[1]", PLAIN], "--entrypoint `[1]`"),
    (["exec", "-e", "novalue", "x", "true"], "-e `novalue`"),
    (["exec", "--bogus", "x", "true"], "usage: vessel container exec"),
    (["run", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", PLAIN],
     "needs the container's own network"),
])
def test_errors_are_one_clear_line(env, args, needle):
    r = ctr(env, *args)
    assert r.returncode != 0
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def caps(text, field):
    """The set named field (CapEff, CapBnd, ...) of /proc/self/status, as a number."""
    return int(re.search(rf"^{field}:\s*([0-9a-f]+)$", text, re.M).group(1), 16)


CAP_CHOWN, CAP_KILL, CAP_NET_RAW, CAP_MKNOD, CAP_SYS_ADMIN = 0, 5, 13, 27, 21


def test_root_has_podmans_default_capabilities_and_cap_add_drop_change_them(env):
    status = "grep Cap /proc/self/status"
    r = ok(env, "run", "--rm", "--network", "none", PLAIN, "sh", "-c",
           f"{status}; chown 5:5 /tmp && echo chowned")
    eff = caps(r.stdout, "CapEff")
    # an image's root may chown its files (podman's default set), not make raw sockets,
    # device nodes or mounts
    assert "chowned" in r.stdout, r.stdout + r.stderr
    assert eff & 1 << CAP_CHOWN and eff == caps(r.stdout, "CapBnd"), r.stdout
    assert not eff & (1 << CAP_NET_RAW | 1 << CAP_MKNOD | 1 << CAP_SYS_ADMIN), r.stdout

    r = ctr(env, "run", "--rm", "--network", "none", "--cap-drop", "chown", PLAIN, "sh", "-c",
            "chown 5:5 /tmp && echo chowned")
    assert "chowned" not in r.stdout and "Operation not permitted" in r.stderr, r.stderr

    # busybox's ping needs a raw socket: CAP_NET_RAW, given by name in podman's spelling
    r = ctr(env, "run", "--rm", "--network", "none", PLAIN, "sh", "-c",
            "ip link set lo up; ping -c1 -W5 127.0.0.1")
    assert r.returncode != 0 and "permission denied" in r.stderr, r.stdout + r.stderr
    r = ok(env, "run", "--rm", "--network", "none", "--cap-add", "NET_RAW", PLAIN, "sh", "-c",
           "ip link set lo up; ping -c1 -W5 127.0.0.1")
    assert "1 packets received" in r.stdout, r.stdout

    r = ok(env, "run", "--rm", "--network", "none", "--cap-drop", "ALL", "--cap-add",
           "CAP_KILL", PLAIN, "sh", "-c", status)
    assert caps(r.stdout, "CapEff") == 1 << CAP_KILL == caps(r.stdout, "CapBnd"), r.stdout


def test_another_user_has_only_the_capabilities_it_is_given(env):
    status = "grep Cap /proc/self/status"
    r = ok(env, "run", "--rm", "--network", "none", "--user", "1000:1000", PLAIN, "sh", "-c",
           status)
    assert caps(r.stdout, "CapEff") == 0 and caps(r.stdout, "CapBnd") & 1 << CAP_CHOWN, r.stdout
    r = ok(env, "run", "--rm", "--network", "none", "--user", "1000:1000", "--cap-add",
           "net_raw", PLAIN, "sh", "-c", status)
    assert caps(r.stdout, "CapEff") == 1 << CAP_NET_RAW == caps(r.stdout, "CapAmb"), r.stdout


# An ICMP echo through a datagram socket (what iputils' ping uses without CAP_NET_RAW):
# busybox's ping only knows raw sockets.
PING_DGRAM_C = r"""
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
int main(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	if (fd < 0) {
		printf("socket: %s\n", strerror(errno));
		return 1;
	}
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct icmphdr h = {.type = ICMP_ECHO, .un.echo.sequence = htons(1)};
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (sendto(fd, &h, sizeof(h), 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		printf("sendto: %s\n", strerror(errno));
		return 1;
	}
	struct icmphdr r;
	if (recv(fd, &r, sizeof(r), 0) < (int)sizeof(r) || r.type != ICMP_ECHOREPLY) {
		printf("no echo reply\n");
		return 1;
	}
	printf("echo reply\n");
	return 0;
}
"""


@pytest.fixture(scope="module")
def ping_dgram(tmp_path_factory):
    d = tmp_path_factory.mktemp("ping")
    (d / "ping.c").write_text(PING_DGRAM_C)
    r = run(["cc", "-static", "-O2", "-Wall", "-Werror", "-o", str(d / "ping"),
             str(d / "ping.c")])
    assert r.returncode == 0, "cannot build the static ping: " + r.stderr
    return d


def test_root_group_pings_without_net_raw_and_sysctl_sets_the_range(env, ping_dgram):
    ping = ["-v", f"{ping_dgram}:/probe:ro", PLAIN, "sh", "-c",
            "ip link set lo up; cat /proc/sys/net/ipv4/ping_group_range; /probe/ping"]
    # podman's default net.ipv4.ping_group_range "0 0": root's group may, with no capability
    r = ok(env, "run", "--rm", "--network", "none", "--cap-drop", "ALL", *ping)
    assert r.stdout.split() == ["0", "0", "echo", "reply"], r.stdout + r.stderr
    # --sysctl comes on top: "1 0" is the kernel's "nobody"
    r = ctr(env, "run", "--rm", "--network", "none", "--cap-drop", "ALL", "--sysctl",
            "net.ipv4.ping_group_range=1 0", *ping)
    assert r.returncode != 0 and r.stdout.split()[:2] == ["1", "0"], r.stdout + r.stderr
    assert "socket: Permission denied" in r.stdout, r.stdout
    r = ok(env, "run", "--rm", "--network", "none", "--sysctl", "kernel.shmmax=65536", PLAIN,
           "cat", "/proc/sys/kernel/shmmax")
    assert r.stdout.strip() == "65536", r.stdout
    # --network host: the host's own range is left as it is
    host = sh(env, "cat /proc/sys/net/ipv4/ping_group_range").stdout
    r = ok(env, "run", "--rm", "--network", "host", PLAIN, "cat",
           "/proc/sys/net/ipv4/ping_group_range")
    assert r.stdout == host, (r.stdout, host)
    # a sysctl that is not the container's to set: one line, and nothing is left
    r = ctr(env, "run", "--rm", "--network", "none", "--sysctl", "vm.swappiness=1", PLAIN,
            "true")
    assert r.returncode != 0 and "vm.swappiness: not a namespaced sysctl" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert ctr(env, "ls").stdout.strip().count("\n") == 0, ctr(env, "ls").stdout


def test_rm_right_after_run_detached_leaves_nothing(env):
    # run -d returns once the container is started: an rm at once finds and kills it
    cid = ok(env, "run", "-d", "--name", "quick", PLAIN, "sleep", "300").stdout.strip()
    ok(env, "rm", "-f", "quick")
    time.sleep(1)
    state = run(env["enter"] + [env["vessel"], "--root", str(env["state"]), "state", cid])
    assert state.returncode != 0
    assert not processes_naming(cid)
    assert not (env["store"] / "containers" / cid).exists()
    assert not (env["store"] / "run" / "netns" / cid).exists()


def test_foreground_run_passes_sigterm_on_and_gives_its_network_back(env):
    name = f"fgsig{os.getpid()}"
    p = subprocess.Popen(
        env["enter"] + ["flock", LOCK, env["vessel"], "--root", str(env["state"]), "container",
                        "--store", str(env["store"]), "run", "--name", name, PLAIN, "sh", "-c",
                        "trap 'echo got-term; exit 3' TERM; echo up; "
                        "while :; do sleep 0.1; done"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "up"
        engine = []
        for pid in processes_naming(f"--name {name} "):
            try:
                if pathlib.Path(f"/proc/{pid}/comm").read_text().strip() == "vessel":
                    engine.append(pid)
            except OSError:
                pass
        assert len(engine) == 1, engine
        os.kill(engine[0], signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
        p.wait()
    assert "got-term" in out and p.returncode == 3, (out, err)
    info = json.loads(ok(env, "inspect", name).stdout)
    assert info["exit_code"] == 3 and info["status"] == "exited"
    assert not pathlib.Path(info["netns"]).exists()
    ok(env, "rm", name)


def test_detached_start_failure_is_reported(env):
    r = ctr(env, "run", "-d", "--name", "broken", PLAIN, "/no/such/program")
    assert r.returncode != 0
    assert "broken" in r.stderr and "/no/such/program" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "broken" not in ok(env, "ls").stdout


def test_start_again_after_stop(env, net):
    ok(env, "run", "-d", "--name", "again", "--network", net, PLAIN, "sh", "-c",
       "echo run >> /runs; trap 'exit 0' TERM; while :; do sleep 0.1; done")
    try:
        ok(env, "stop", "again")
        r = ctr(env, "start", "again")
        assert r.returncode == 0, r.stderr
        # the same root (its writes kept), a network again
        assert ok(env, "exec", "again", "cat", "/runs").stdout == "run\nrun\n"
        ip = json.loads(ok(env, "inspect", "again").stdout)["ip"]
        r = ok(env, "exec", "again", "sh", "-c", "ip -o -4 addr show eth0")
        assert f"inet {ip}/" in r.stdout
        r = ctr(env, "start", "again")
        assert r.returncode != 0 and "running" in r.stderr
    finally:
        ctr(env, "rm", "-f", "again")


def test_diff_lists_what_the_container_changed(env):
    ok(env, "run", "--name", "changer", "--network", "none", PLAIN, "sh", "-c",
       "echo x > /new; rm /etc/group; echo y >> /etc/passwd")
    try:
        lines = set(ok(env, "diff", "changer").stdout.splitlines())
        assert {"A /new", "D /etc/group", "C /etc/passwd"} <= lines, lines
    finally:
        ok(env, "rm", "changer")


def test_name_in_use(env):
    ok(env, "run", "-d", "--name", "dup", PLAIN, "sh", "-c", "sleep 30")
    try:
        r = ctr(env, "run", "--name", "dup", PLAIN, "true")
        assert r.returncode != 0 and "in use" in r.stderr, r.stderr
    finally:
        ctr(env, "rm", "-f", "dup")


# Networks: a named network of the tests' own, so the addresses are known.
NET = "engnet"
SUBNET = "10.214.9.0/24"
GATEWAY = "10.214.9.1"

# reads until n bytes (or the peer's end) from the namespaces' host side; prints the
# bytes' count, the text when short, and the seconds from the first byte
FETCH = ("import socket,sys,time\n"
         "ip,port,n=sys.argv[1],int(sys.argv[2]),int(sys.argv[3])\n"
         "c=socket.create_connection((ip,port),timeout=20); got=b''; t=None\n"
         "while len(got)<n:\n"
         "  b=c.recv(65536)\n"
         "  if not b: break\n"
         "  t=t or time.time(); got+=b\n"
         "print(len(got), time.time()-(t or time.time()), got[:64].decode(errors='replace').strip())\n")


def fetch(env, ip, port, n, deadline=30):
    """What a server in a container sends, from the host side; retried while the server
    is not listening yet (connection refused or reset)."""
    end = time.time() + deadline
    while True:
        r = run(env["enter"] + ["/usr/bin/python3", "-c", FETCH, ip, str(port), str(n)],
                timeout=120)
        if r.returncode == 0 and int(r.stdout.split()[0]) > 0:
            count, secs, *text = r.stdout.split(maxsplit=2)
            return int(count), float(secs), text[0].strip() if text else ""
        assert time.time() < end, r.stderr
        time.sleep(0.2)


def network(env, *args):
    r = run(env["enter"] + [env["vessel"], "network", "--store", str(env["store"]), *args])
    assert r.returncode == 0, f"{args}: {r.stderr}"
    return r


@pytest.fixture
def net(env):
    network(env, "create", NET, "--subnet", SUBNET)
    yield NET
    network(env, "rm", NET)


def wait_log(env, name, needle):
    deadline = time.time() + 60
    while needle not in ctr(env, "logs", name).stdout:
        assert time.time() < deadline, f"{name}: no `{needle}` in the log"
        time.sleep(0.2)


def serve(env, name, net, *extra, script):
    ok(env, "run", "-d", "--name", name, "--network", net, *extra, PLAIN, "sh", "-c",
       f"echo ready; while :; do {script}; done")
    wait_log(env, name, "ready")


def test_published_port_answers_from_the_host(env, net):
    serve(env, "web", net, "-p", "18080:8080", script="echo hello | nc -l -p 8080")
    try:
        n, _, text = fetch(env, GATEWAY, 18080, 6)
        assert text == "hello"
        # the container's own address is not what was published
        info = json.loads(ok(env, "inspect", "web").stdout)
        assert info["ip"].startswith("10.214.9.") and info["gateway"] == GATEWAY
    finally:
        ctr(env, "rm", "-f", "web")


def test_peers_reach_each_other_by_name(env, net):
    serve(env, "srv", net, script="echo hi-from-srv | nc -l -p 7000")
    try:
        r = ok(env, "run", "--rm", "--name", "cli", "--network", net, PLAIN, "sh", "-c",
               "for i in 1 2 3 4 5 6 7 8 9 10; do nc -w 2 srv 7000 </dev/null && exit 0; "
               "sleep 0.3; done; exit 1")
        assert r.stdout.strip() == "hi-from-srv"
        # a peer that starts later is added to the running one's /etc/hosts, and goes
        # when it stops
        ok(env, "run", "-d", "--name", "late", "--network", net, PLAIN, "sh", "-c",
           "while :; do sleep 0.1; done")
        late_ip = json.loads(ok(env, "inspect", "late").stdout)["ip"]
        hosts = ok(env, "exec", "srv", "cat", "/etc/hosts").stdout
        assert f"{late_ip}\tlate\n" in hosts, hosts
        assert "cli" not in hosts, hosts
        ok(env, "stop", "-t", "1", "late")
        hosts = ok(env, "exec", "srv", "cat", "/etc/hosts").stdout
        assert "late" not in hosts, hosts
    finally:
        ctr(env, "rm", "-f", "late")
        ctr(env, "rm", "-f", "srv")


NET6, SUBNET6, GATEWAY6 = "engnet6", "fd42:214:9::/64", "fd42:214:9::1"


def test_dual_stack_peers_reach_each_other_by_name_over_both(env):
    network(env, "create", NET6, "--subnet", "10.214.10.0/24", "--subnet", SUBNET6)
    try:
        serve(env, "srv6", NET6, "-p", "18090:7000", "-p", f"[{GATEWAY6}]:18091:7000",
              script="echo hi-from-srv6 | nc -l -p 7000")
        info = json.loads(ok(env, "inspect", "srv6").stdout)
        assert info["ip"].startswith("10.214.10.") and info["ip6"].startswith("fd42:214:9::")
        assert info["gateway6"] == GATEWAY6
        # the container's own hosts file carries both of its addresses
        hosts = ok(env, "exec", "srv6", "cat", "/etc/hosts").stdout
        own = f"\t{info['hostname']} srv6\n"
        assert info["ip"] + own in hosts and info["ip6"] + own in hosts, hosts
        # a peer resolves the name to either family, and reaches it over both
        ok(env, "run", "-d", "--name", "cli6", "--network", NET6, PLAIN, "sh", "-c",
           "while :; do sleep 0.1; done")
        hosts = ok(env, "exec", "cli6", "cat", "/etc/hosts").stdout
        assert f"{info['ip']}\tsrv6\n" in hosts and f"{info['ip6']}\tsrv6\n" in hosts, hosts
        # by name over both: nc resolves it to one family (IPv4, by getaddrinfo's
        # precedence over a ULA), so IPv6 goes to what /etc/hosts maps the name to.
        # (busybox ping -6 would ask for the name's IPv6 address itself, but it needs a
        # raw socket, and a container has no CAP_NET_RAW.)
        v6_of_name = "$(awk '$2 == \"srv6\" && index($1, \":\") { print $1 }' /etc/hosts)"
        for target in ("srv6", v6_of_name):
            r = ok(env, "exec", "cli6", "sh", "-c",
                   "for i in 1 2 3 4 5 6 7 8 9 10; do "
                   f"nc -w 2 {target} 7000 </dev/null && exit 0; sleep 0.3; done; exit 1")
            assert r.stdout.strip() == "hi-from-srv6", (target, r.stdout, r.stderr)
        assert ok(env, "exec", "cli6", "sh", "-c", f"echo {v6_of_name}").stdout.strip() \
            == info["ip6"]
        # the published port over IPv6 (portmap's ip6tables), from the host side
        _, _, text = fetch(env, GATEWAY6, 18090, 14)
        assert text == "hi-from-srv6"
        # and on one IPv6 host address, podman's [ADDR]:HOST:CONTAINER
        _, _, text = fetch(env, GATEWAY6, 18091, 14)
        assert text == "hi-from-srv6"
    finally:
        ctr(env, "rm", "-f", "cli6")
        ctr(env, "rm", "-f", "srv6")
        network(env, "rm", NET6)
    assert not (env["store"] / "network-ipam" / NET6).exists()


def test_network_none_default_and_host(env):
    r = ok(env, "run", "--rm", "--network", "none", PLAIN, "sh", "-c",
           "ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags")
    names = r.stdout.split()
    assert names[0] == "lo" and names[1] in ("unknown", "up") and int(names[2], 16) & 1
    assert len(names) == 3, r.stdout
    # no --network: the default network "vessel", made on first use
    r = ok(env, "run", "--rm", PLAIN, "ls", "/sys/class/net")
    assert r.stdout.split() == ["eth0", "lo"]
    assert "vessel" in network(env, "ls").stdout
    # host: the namespaces' own links (the default network's bridge among them); asked
    # of ip, since the holder's /sys still shows the netns it was mounted in
    host = sorted(line.split(": ")[1].split("@")[0]
                  for line in sh(env, "ip -o link").stdout.splitlines())
    r = ok(env, "run", "--rm", "--network", "host", PLAIN, "ls", "/sys/class/net")
    assert sorted(r.stdout.split()) == host
    r = ctr(env, "run", "--rm", "--network", "none", "-p", "1:2", PLAIN, "true")
    assert r.returncode != 0 and "-p" in r.stderr


def test_stop_removes_every_veth_rule_and_lease(env, net):
    ok(env, "run", "-d", "--name", "leaky", "--network", net, "-p", "18081:8081",
       "--net-rate", "10mbit", PLAIN, "sh", "-c", "while :; do sleep 0.1; done")
    try:
        info = json.loads(ok(env, "inspect", "leaky").stdout)
        ip, netns = info["ip"], info["netns"]
        lease = env["store"] / "network-ipam" / net / ip
        assert sh(env, "ip -o link show type veth").stdout.strip()
        assert ip in sh(env, "iptables-save").stdout
        assert lease.exists() and pathlib.Path(netns).exists()
        assert "tbf" in sh(env, "tc qdisc show").stdout
        ok(env, "stop", "-t", "1", "leaky")
        assert sh(env, "ip -o link show type veth").stdout.strip() == ""
        rules = sh(env, "iptables-save").stdout
        assert ip not in rules and "CNI-DN-" not in rules, rules
        assert not lease.exists() and not pathlib.Path(netns).exists()
        assert "tbf" not in sh(env, "tc qdisc show").stdout
        assert any(line.split()[1:2] == ["leaky"] and line.endswith("exited")
                   for line in ok(env, "ls").stdout.splitlines())
    finally:
        ctr(env, "rm", "-f", "leaky")
    # the network has nobody attached: it can go
    assert json.loads(network(env, "inspect", net).stdout)["containers"] == 0


def test_net_rate_caps_a_timed_transfer(env, net):
    rate, nbytes = 8_000_000, 4_000_000  # 4 s at the cap
    serve(env, "fast", net, "-p", "18082:8000", "--net-rate", "8mbit",
          script=f"dd if=/dev/zero bs=1000 count={nbytes // 1000} 2>/dev/null | "
                 "nc -l -p 8000")
    try:
        ip = json.loads(ok(env, "inspect", "fast").stdout)["ip"]
        n, secs, _ = fetch(env, ip, 8000, nbytes)
    finally:
        ctr(env, "rm", "-f", "fast")
    assert n == nbytes
    measured = n * 8 / secs
    # the burst (a tenth of a second) passes at line rate: 4 s absorb it
    assert abs(measured - rate) / rate < 0.10, f"{measured:.0f} bit/s against {rate}"
