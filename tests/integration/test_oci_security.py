"""The container can never reach the vessel binary, nor inherit the runtime's fds."""
import hashlib
import json
import os
import subprocess
import time


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_init_runs_from_a_sealed_copy(bundle):
    bundle.args("true")
    cid, r = bundle.create("--pid-file", str(bundle.path / "pid"))
    assert r.returncode == 0, r.stderr
    pid = int((bundle.path / "pid").read_text())
    # the waiting init's exe is a memfd, not the file on the host
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:vessel")
    try:
        fd = os.open(f"/proc/{pid}/exe", os.O_WRONLY)
        os.close(fd)
        raise AssertionError("the init's exe could be opened for writing")
    except OSError as e:
        assert e.errno in (1, 26), e  # EPERM (sealed) or ETXTBSY


def test_container_cannot_overwrite_vessel_through_proc_exe(bundle, vessel):
    """CVE-2019-5736: code in the container writes to /proc/<vessel pid>/exe while the
    vessel init is alive in its pid namespace (a startContainer hook runs there)."""
    before = sha(vessel)
    d = bundle.path / "out"
    d.mkdir()
    os.chmod(d, 0o777)
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(d),
                                    "options": ["rbind", "rw"]})
    attack = ("readlink /proc/1/exe > /out/exe; "
              "echo pwned > /proc/1/exe; echo write=$? >> /out/result; "
              "echo pwned >> /proc/1/exe; echo append=$? >> /out/result")
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/sh",
                                                  "args": ["sh", "-c", attack]}]}
    r = bundle.args("true").run()
    assert r.returncode == 0, r.stderr
    assert (d / "exe").read_text().startswith("/memfd:vessel")
    assert (d / "result").read_text().split() == ["write=1", "append=1"] or \
        (d / "result").read_text().split() == ["write=2", "append=2"]
    assert sha(vessel) == before


def test_no_fd_leaks_into_the_container(bundle):
    r1, w1 = os.pipe()
    os.set_inheritable(r1, True)
    try:
        bundle.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '").write()
        cid = bundle.new_id()
        # an inheritable fd of the caller, not announced with --preserve-fds
        p = subprocess.run([bundle.vessel, "--root", str(bundle.root), "run", "--bundle",
                            str(bundle.path), cid], capture_output=True, text=True,
                           timeout=60, pass_fds=(r1,))
        assert p.returncode == 0, p.stderr
        # 0, 1, 2 and the directory ls itself has open
        assert p.stdout.split() == ["0", "1", "2", "3"], p.stdout
    finally:
        os.close(r1)
        os.close(w1)


def test_preserve_fds_passes_them(bundle, tmp_path):
    f = tmp_path / "given"
    f.write_text("passed through\n")
    bundle.sh("cat <&3").write()
    cid = bundle.new_id()
    # the shell opens fd 3 for vessel; pytest's own fds stay untouched
    p = subprocess.run(["sh", "-c", 'exec "$@" 3< "$GIVEN"', "sh", bundle.vessel, "--root",
                        str(bundle.root), "run", "--bundle", str(bundle.path),
                        "--preserve-fds", "1", cid],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "GIVEN": str(f)})
    assert p.returncode == 0, p.stderr
    assert p.stdout == "passed through\n"


def test_symlink_in_the_image_cannot_redirect_a_mount_to_the_host(bundle, tmp_path):
    """A mount destination that is a symlink to an absolute host path resolves inside
    the rootfs, never on the host."""
    root = tmp_path / "evilroot"
    subprocess.run(["cp", "-a", bundle.config["root"]["path"], str(root)], check=True)
    target = tmp_path / "host-target"
    target.mkdir()
    os.symlink(str(target), root / "escape")
    bundle.config["root"]["path"] = str(root)
    bundle.config["mounts"].append({"destination": "/escape", "type": "tmpfs",
                                    "source": "tmpfs", "options": ["size=1m"]})
    bundle.sh("touch /escape/marker && echo ok").run()
    # whatever happened inside, nothing was mounted or written at the host path
    assert list(target.iterdir()) == []
    assert str(target) not in open("/proc/self/mountinfo").read()
