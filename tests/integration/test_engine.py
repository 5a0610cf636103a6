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
import shutil
import subprocess
import tarfile
import time

import pytest

from conftest import run
from clients import busybox_rootfs, rootfs_tar, unmount_under

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
    (["rm", "no-such-container"], "no container"),
])
def test_errors_are_one_clear_line(env, args, needle):
    r = ctr(env, *args)
    assert r.returncode != 0
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_name_in_use(env):
    ok(env, "run", "-d", "--name", "dup", PLAIN, "sh", "-c", "sleep 30")
    try:
        r = ctr(env, "run", "--name", "dup", PLAIN, "true")
        assert r.returncode != 0 and "in use" in r.stderr, r.stderr
    finally:
        ctr(env, "rm", "-f", "dup")
