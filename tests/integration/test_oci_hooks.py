"""OCI hooks: every kind runs, in order, with the state on stdin; timeouts hold."""
import json
import os
import time

HOOK = """#!/bin/sh
state=$(cat)
echo "$1 $state" >> "$(dirname "$0")/log"
"""


from conftest import make_hook_dir  # noqa: E402


def hook_dir(bundle):
    return make_hook_dir(bundle, HOOK)


def test_hooks_run_in_order_with_the_state(bundle):
    d = hook_dir(bundle)
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
             "poststop"]
    bundle.config["hooks"] = {k: [{"path": str(d / "hook.sh"), "args": ["hook.sh", k]}]
                              for k in kinds}
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.args("true")
    cid, r = bundle.create()
    assert r.returncode == 0, r.stderr
    pid = json.loads(bundle.cmd("state", cid).stdout)["pid"]
    assert bundle.cmd("start", cid).returncode == 0
    deadline = time.time() + 5
    while json.loads(bundle.cmd("state", cid).stdout)["status"] != "stopped":
        assert time.time() < deadline
        time.sleep(0.02)
    assert bundle.cmd("delete", cid).returncode == 0
    lines = (d / "log").read_text().splitlines()
    got = [(l.split(" ", 1)[0], json.loads(l.split(" ", 1)[1])) for l in lines]
    assert [k for k, _ in got] == kinds
    status = {k: s["status"] for k, s in got}
    assert status == {"prestart": "created", "createRuntime": "created",
                      "createContainer": "created", "startContainer": "created",
                      "poststart": "running", "poststop": "stopped"}
    for k, s in got:
        assert s["id"] == cid and s["bundle"] == str(bundle.path), k
        assert s["annotations"] == {"org.example.key": "value"}, k
        if k != "poststop":
            assert s["pid"] == pid, k


def test_run_calls_the_hooks_too(bundle):
    d = hook_dir(bundle)
    bundle.config["hooks"] = {k: [{"path": str(d / "hook.sh"), "args": ["hook.sh", k]}]
                              for k in ("createRuntime", "poststart", "poststop")}
    r = bundle.args("true").run()
    assert r.returncode == 0, r.stderr
    kinds = [l.split(" ", 1)[0] for l in (d / "log").read_text().splitlines()]
    assert kinds == ["createRuntime", "poststart", "poststop"]


def no_trace_of(bundle, cid):
    assert not (bundle.root / cid).exists()
    for ctrl in ("memory", "pids", "cpu"):
        assert not os.path.exists(f"/sys/fs/cgroup/{ctrl}/vessel/{cid}"), ctrl


def test_hook_timeout_is_honoured(bundle):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                                  "timeout": 1}]}
    t = time.time()
    cid, r = bundle.create()
    assert r.returncode != 0
    assert time.time() - t < 10
    assert "hooks.createRuntime[0]" in r.stderr and "timed out after 1 s" in r.stderr
    no_trace_of(bundle, cid)


def test_failing_prestart_hook_fails_create_and_leaves_nothing(bundle):
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}
    cid, r = bundle.create()
    assert r.returncode != 0
    assert "hooks.prestart[0]" in r.stderr and "exit status 3" in r.stderr
    no_trace_of(bundle, cid)


def test_failing_poststop_hook_only_warns(bundle):
    bundle.config["hooks"] = {"poststop": [{"path": "/bin/false"}]}
    r = bundle.args("true").run()
    assert r.returncode == 0
    assert "hooks.poststop[0]" in r.stderr
    assert not (bundle.root / bundle.ids[-1]).exists()


def test_failing_start_container_hook_fails_start(bundle):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/sh",
                                                  "args": ["sh", "-c", "exit 6"]}]}
    bundle.args("sleep", "30")
    cid, r = bundle.create()
    assert r.returncode == 0, r.stderr
    r = bundle.cmd("start", cid)
    assert r.returncode != 0
    assert "hooks.startContainer[0]" in r.stderr and "exit status 6" in r.stderr
    assert json.loads(bundle.cmd("state", cid).stdout)["status"] == "stopped"
