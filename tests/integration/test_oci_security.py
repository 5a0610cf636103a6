"""The container can never reach the vessel binary, nor inherit the runtime's fds."""
import hashlib
import os
import subprocess
import time


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_init_runs_from_a_read_only_view_of_vessel(bundle, vessel):
    bundle.args("true")
    cid, r = bundle.create("--pid-file", str(bundle.path / "pid"))
    assert r.returncode == 0, r.stderr
    pid = int((bundle.path / "pid").read_text())
    exe = f"/proc/{pid}/exe"
    # the waiting init runs vessel, but not through the host's writable path to it
    assert hashlib.sha256(open(exe, "rb").read()).hexdigest() == sha(vessel)
    sealed_memfd = os.readlink(exe).startswith("/memfd:vessel")
    read_only_mount = bool(os.statvfs(exe).f_flag & os.ST_RDONLY)
    assert sealed_memfd or read_only_mount, os.readlink(exe)


def test_container_cannot_overwrite_vessel_through_proc_exe(bundle, vessel):
    """CVE-2019-5736: code in the container takes hold of /proc/1/exe while the vessel
    init is alive in its pid namespace (a startContainer hook runs there), keeps it, and
    reopens it for writing once vessel is gone and the binary is no longer busy."""
    before = sha(vessel)
    d = bundle.path / "out"
    d.mkdir()
    os.chmod(d, 0o777)
    bundle.config["mounts"].append({"destination": "/out", "type": "bind", "source": str(d),
                                    "options": ["rbind", "rw"]})
    attack = ("exec 3</proc/1/exe; "
              "echo now > /proc/1/exe; echo busy=$? > /out/busy; "
              "(sleep 1; echo pwned > /proc/self/fd/3; echo later=$? > /out/later) & ")
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/sh",
                                                  "args": ["sh", "-c", attack]}]}
    bundle.args("sleep", "3")
    cid, r = bundle.create()
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    deadline = time.time() + 10
    while not (d / "later").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (d / "busy").read_text().split() == ["busy=1"]
    # by now no vessel process runs the binary: only its read-only view stops the write
    assert (d / "later").read_text().split() == ["later=1"]
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
