"""Bad input: one clear line naming the file and field, a non-zero exit, nothing left."""
import json
import os


def one_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def assert_nothing_left(bundle, cid):
    assert not (bundle.root / cid).exists()
    for ctrl in ("memory", "pids", "cpu", "freezer"):
        assert not os.path.exists(f"/sys/fs/cgroup/{ctrl}/vessel/{cid}")


def test_missing_config(bundle):
    r = bundle.cmd("create", "--bundle", str(bundle.path), "x1")
    assert r.returncode != 0
    line = one_line(r)
    assert "config.json" in line and "No such file or directory" in line
    assert_nothing_left(bundle, "x1")


def test_malformed_json(bundle):
    (bundle.path / "config.json").write_text('{"ociVersion": "1.2.0", "process": ')
    r = bundle.cmd("create", "--bundle", str(bundle.path), "x1")
    assert r.returncode != 0
    line = one_line(r)
    assert "config.json" in line and "invalid JSON at line 1" in line
    assert_nothing_left(bundle, "x1")


def test_wrong_field_type_names_the_field(bundle):
    bundle.config["process"]["args"] = "sh"
    cid, r = bundle.create()
    assert r.returncode != 0
    assert one_line(r).endswith(
        "config.json: process.args: must be a non-empty array of strings")
    assert_nothing_left(bundle, cid)


def test_nested_field_errors(bundle):
    cases = [
        (("linux", "resources", "memory", "limit"), "lots",
         "linux.resources.memory.limit"),
        (("process", "user", "uid"), -1, "process.user.uid"),
        (("process", "rlimits"), [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}],
         "process.rlimits[0].type"),
        (("linux", "namespaces"), [{"type": "pid"}, {"type": "pid"}],
         "linux.namespaces[1].type"),
        (("mounts",), [{"destination": "relative", "type": "tmpfs"}],
         "mounts[0].destination"),
        (("hooks",), {"prestart": [{"path": "relative"}]}, "hooks.prestart[0].path"),
        (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_EXPLODE"},
         "linux.seccomp.defaultAction"),
        (("process", "capabilities", "bounding"), ["CAP_FLY"],
         "process.capabilities.bounding"),
        (("linux", "sysctl"), {"kernel.panic": "1"}, "linux.sysctl.kernel.panic"),
    ]
    base = json.loads(json.dumps(bundle.config))
    for keys, value, field in cases:
        bundle.config = json.loads(json.dumps(base))
        obj = bundle.config
        for k in keys[:-1]:
            obj = obj.setdefault(k, {})
        obj[keys[-1]] = value
        cid, r = bundle.create()
        assert r.returncode != 0, field
        assert f"config.json: {field}" in one_line(r), (field, r.stderr)
        assert_nothing_left(bundle, cid)


def test_unknown_oci_version(bundle):
    bundle.config["ociVersion"] = "2.0.0"
    cid, r = bundle.create()
    assert r.returncode != 0
    assert "ociVersion: unsupported version `2.0.0`" in one_line(r)


def test_missing_rootfs(bundle, tmp_path):
    bundle.config["root"]["path"] = str(tmp_path / "nowhere")
    cid, r = bundle.create()
    assert r.returncode != 0
    line = one_line(r)
    assert "root.path" in line and "No such file or directory" in line
    assert_nothing_left(bundle, cid)


def test_duplicate_id(bundle):
    bundle.args("sleep", "60")
    cid, r = bundle.create()
    assert r.returncode == 0, r.stderr
    r = bundle.cmd("create", "--bundle", str(bundle.path), cid)
    assert r.returncode != 0 and f"container `{cid}` already exists" in one_line(r)
    assert json.loads(bundle.cmd("state", cid).stdout)["status"] == "created"


def test_invalid_id(bundle):
    bundle.write()
    for bad in ("../escape", "a/b", "", ".."):
        r = bundle.cmd("create", "--bundle", str(bundle.path), bad)
        assert r.returncode != 0 and "invalid container id" in one_line(r), bad


def test_unknown_id(bundle):
    for cmd in (["state"], ["start"], ["kill"], ["delete"]):
        r = bundle.cmd(*cmd, "nosuchbox")
        assert r.returncode != 0
        assert "container `nosuchbox` does not exist" in one_line(r), cmd
    assert bundle.cmd("delete", "--force", "nosuchbox").returncode == 0


def test_kill_of_a_stopped_container(bundle):
    r = bundle.args("true").run("--keep")
    assert r.returncode == 0, r.stderr
    cid = bundle.ids[-1]
    r = bundle.cmd("kill", cid, "KILL")
    assert r.returncode != 0 and "container not running" in one_line(r)
    assert bundle.cmd("delete", cid).returncode == 0


def test_json_log_for_containerd(bundle, tmp_path):
    log = tmp_path / "runtime.log"
    bundle.config["process"]["args"] = []
    bundle.write()
    r = bundle.cmd("--log", str(log), "--log-format", "json", "create", "--bundle",
                   str(bundle.path), "x2")
    assert r.returncode != 0
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error"
    assert "process.args: must be a non-empty array of strings" in last["msg"]
    assert "time" in last


def test_bad_global_flags(bundle):
    r = bundle.cmd("--log-format", "yaml", "list")
    assert r.returncode != 0 and "--log-format" in one_line(r)
    r = bundle.cmd("frobnicate")
    assert r.returncode != 0 and "unknown command" in one_line(r)


def test_systemd_cgroup_without_systemd(bundle):
    bundle.args("true")
    bundle.write()
    r = bundle.cmd("--systemd-cgroup", "run", "--bundle", str(bundle.path), "x3")
    assert r.returncode != 0
    assert "--systemd-cgroup" in one_line(r) and "systemd is not running" in r.stderr
    assert_nothing_left(bundle, "x3")
