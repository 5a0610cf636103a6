"""Configs that runc and crun run (issue 14 §1): vessel runs them the same way."""
import json
import os
import time

import pytest


def out_of(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def seccomp_denying(*names):
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": list(names), "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}]}


# ---------------------------------------------------------------- seccomp


@pytest.mark.parametrize("nnp", [True, False])
def test_a_profile_without_close_range_still_runs(bundle, nnp):
    """Profiles older than Linux 5.9 do not list close_range: vessel's own work must not
    depend on what the user's filter allows."""
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = seccomp_denying("close_range")
    assert out_of(bundle.args("echo", "ran").run()) == "ran\n"


def test_exec_under_a_profile_without_close_range(bundle):
    bundle.config["linux"]["seccomp"] = seccomp_denying("close_range")
    cid, r = bundle.args("sleep", "30").create()
    assert r.returncode == 0, r.stderr
    assert bundle.cmd("start", cid).returncode == 0
    assert out_of(bundle.cmd("exec", cid, "echo", "in")) == "in\n"


# ---------------------------------------------------------------- --help


@pytest.mark.parametrize("cmd", ["create", "start", "run", "state", "kill", "delete", "exec",
                                 "ps", "pause", "resume", "update", "events", "list",
                                 "spec", "features"])
def test_every_command_answers_help(vessel, cmd, tmp_path):
    from conftest import run
    r = run([vessel, "--root", str(tmp_path), cmd, "--help"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "usage" in (r.stdout + r.stderr).lower() or cmd == "features"


# ---------------------------------------------------------------- hooks

LOG_HOOK = """#!/bin/sh
state=$(cat)
echo "$1 ${HOOK_VAR:-unset} $state" >> "$(dirname "$0")/log"
exit ${2:-0}
"""


def hook_dir(bundle):
    d = bundle.path / "hooks"
    d.mkdir()
    os.chmod(d, 0o777)
    (d / "hook.sh").write_text(LOG_HOOK)
    os.chmod(d / "hook.sh", 0o755)
    bundle.config["mounts"].append({"destination": str(d), "type": "bind",
                                    "source": str(d), "options": ["rbind", "rw"]})
    return d


def hook_log(d):
    return [l.split(" ", 2) for l in (d / "log").read_text().splitlines()]


def test_a_failing_poststart_or_poststop_hook_does_not_stop_the_others(bundle):
    d = hook_dir(bundle)
    h = str(d / "hook.sh")
    bundle.config["hooks"] = {
        k: [{"path": h, "args": ["hook.sh", f"{k}1", "3"]},
            {"path": h, "args": ["hook.sh", f"{k}2"]}] for k in ("poststart", "poststop")}
    r = bundle.args("true").run()
    assert r.returncode == 0, r.stderr
    assert [l[0] for l in hook_log(d)] == ["poststart1", "poststart2", "poststop1",
                                           "poststop2"]
    assert "hooks.poststart[0]" in r.stderr and "hooks.poststop[0]" in r.stderr


def test_a_failing_prestart_hook_still_stops_create(bundle):
    d = hook_dir(bundle)
    h = str(d / "hook.sh")
    bundle.config["hooks"] = {"createRuntime": [{"path": h, "args": ["hook.sh", "a", "3"]},
                                                {"path": h, "args": ["hook.sh", "b"]}]}
    cid, r = bundle.args("true").create()
    assert r.returncode != 0 and "hooks.createRuntime[0]" in r.stderr
    assert [l[0] for l in hook_log(d)] == ["a"]


def test_hooks_get_the_env_of_the_config(bundle):
    d = hook_dir(bundle)
    h = str(d / "hook.sh")
    bundle.config["hooks"] = {k: [{"path": h, "args": ["hook.sh", k],
                                   "env": ["HOOK_VAR=from-config"]}]
                              for k in ("createRuntime", "createContainer", "startContainer",
                                        "poststart", "poststop")}
    assert bundle.args("true").run().returncode == 0
    got = hook_log(d)
    assert len(got) == 5
    assert all(l[1] == "from-config" for l in got), got


def test_hook_state_follows_the_lifecycle_as_crun(bundle):
    """The spec's "created" is after the environment is made (step 2): the hooks of steps
    3 to 5 see created, as in crun."""
    d = hook_dir(bundle)
    h = str(d / "hook.sh")
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
             "poststop"]
    bundle.config["hooks"] = {k: [{"path": h, "args": ["hook.sh", k]}] for k in kinds}
    assert bundle.args("true").run().returncode == 0
    status = {l[0]: json.loads(l[2])["status"] for l in hook_log(d)}
    assert status == {"prestart": "created", "createRuntime": "created",
                      "createContainer": "created", "startContainer": "created",
                      "poststart": "running", "poststop": "stopped"}
