"""The informational commands: spec, features, --version, --help."""
import json

from conftest import run


def test_version(vessel):
    r = run([vessel, "--version"])
    assert r.returncode == 0 and r.stdout.startswith("vessel version ")
    assert "spec: 1.2.0" in r.stdout


def test_help_lists_every_runc_command(vessel):
    r = run([vessel, "--help"])
    assert r.returncode == 0
    for cmd in ("create", "start", "run", "state", "kill", "delete", "list", "exec", "ps",
                "pause", "resume", "update", "events", "spec", "features", "vm"):
        assert f"  {cmd} " in r.stdout, cmd


def test_spec_writes_a_config_that_runs(vessel, tmp_path, base_bundle):
    r = run([vessel, "spec", "--bundle", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    c = json.loads((tmp_path / "config.json").read_text())
    assert c["ociVersion"] == "1.2.0" and c["root"] == {"path": "rootfs", "readonly": True}
    assert {n["type"] for n in c["linux"]["namespaces"]} >= {"pid", "mount", "network"}
    r = run([vessel, "spec", "--bundle", str(tmp_path)])
    assert r.returncode != 0 and "exists already" in r.stderr
    # it runs as written, but for the terminal and the command
    (tmp_path / "rootfs").symlink_to(base_bundle / "rootfs")
    c["process"]["terminal"] = False
    c["process"]["args"] = ["true"]
    (tmp_path / "config.json").write_text(json.dumps(c))
    r = run([vessel, "--root", str(tmp_path / "state"), "run", "--bundle", str(tmp_path), "s1"])
    assert r.returncode == 0, r.stderr


def test_rootless_spec(vessel, tmp_path):
    r = run([vessel, "spec", "--rootless", "--bundle", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    c = json.loads((tmp_path / "config.json").read_text())
    types = {n["type"] for n in c["linux"]["namespaces"]}
    assert "user" in types and "network" not in types
    assert c["linux"]["uidMappings"][0]["size"] == 1
    assert "resources" not in c["linux"]


def test_features(vessel):
    r = run([vessel, "features"])
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout)
    assert f["ociVersionMin"] == "1.0.0" and f["ociVersionMax"] == "1.2.0"
    assert set(f["hooks"]) == {"prestart", "createRuntime", "createContainer",
                               "startContainer", "poststart", "poststop"}
    assert "rbind" in f["mountOptions"] and "ro" in f["mountOptions"]
    lx = f["linux"]
    assert set(lx["namespaces"]) == {"cgroup", "ipc", "mount", "network", "pid", "user",
                                     "uts", "time"}
    assert "CAP_SYS_ADMIN" in lx["capabilities"]
    assert lx["cgroup"]["v1"] and lx["cgroup"]["v2"]
    assert lx["seccomp"]["enabled"] and "SCMP_ACT_ERRNO" in lx["seccomp"]["actions"]
    assert "SCMP_ARCH_X86_64" in lx["seccomp"]["archs"]
    assert lx["mountExtensions"] == {"idmap": {"enabled": True}}
