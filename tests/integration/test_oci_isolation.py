"""Limits and privileges that really bind: cgroups, seccomp, capabilities."""
import os

CGROUP = "/sys/fs/cgroup"


def test_memory_limit_oom_kills_an_allocation_past_it(bundle):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
    # the shell keeps the whole string in memory: 64 MiB cannot fit in 32 MiB
    r = bundle.sh("a=$(head -c 67108864 /dev/zero | tr '\\0' x); echo survived ${#a}").run()
    assert r.returncode == 128 + 9, (r.returncode, r.stdout, r.stderr)
    assert "survived" not in r.stdout


def test_memory_limit_leaves_room_below_it(bundle):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 64 << 20, "swap": 64 << 20}
    r = bundle.sh("a=$(head -c 8388608 /dev/zero | tr '\\0' x); echo survived ${#a}").run()
    assert r.returncode == 0, r.stderr
    assert "survived 8388608" in r.stdout


def test_memory_limit_visible_inside(bundle):
    bundle.config["linux"]["resources"]["memory"] = {"limit": 48 << 20}
    r = bundle.sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes").run()
    assert r.stdout.strip() == str(48 << 20), r.stderr


def test_pids_limit_contains_a_fork_bomb(bundle):
    bundle.config["linux"]["resources"]["pids"] = {"limit": 16}
    # the bomb runs in a child shell, which dies when fork fails; the outer shell then
    # uses builtins only: nothing is left to fork with
    r = bundle.sh("sh -c 'while true; do sleep 5 & done'; "
                  "read c < /sys/fs/cgroup/pids/pids.current; "
                  "read m < /sys/fs/cgroup/pids/pids.max; echo $c $m").run(timeout=60)
    current, limit = r.stdout.split()[-2:]
    assert limit == "16" and int(current) <= 16
    assert "can't fork" in r.stderr or "Resource temporarily unavailable" in r.stderr


def test_cpu_and_cgroups_path(bundle):
    path = "/vessel-test/" + os.urandom(4).hex()
    bundle.config["linux"]["cgroupsPath"] = path
    bundle.config["linux"]["resources"]["cpu"] = {"shares": 512, "quota": 50000,
                                                   "period": 100000}
    bundle.args("sleep", "60")
    cid, r = bundle.create()
    assert r.returncode == 0, r.stderr
    d = CGROUP + "/cpu" + path
    assert open(d + "/cpu.shares").read().strip() == "512"
    assert open(d + "/cpu.cfs_quota_us").read().strip() == "50000"
    assert open(d + "/cpu.cfs_period_us").read().strip() == "100000"
    for ctrl in ("memory", "pids", "cpuset", "freezer"):
        assert os.path.isdir(CGROUP + "/" + ctrl + path), ctrl
    assert bundle.cmd("delete", cid).returncode == 0
    for ctrl in ("cpu", "memory", "pids", "cpuset", "freezer", "unified"):
        assert not os.path.exists(CGROUP + "/" + ctrl + path), ctrl


def test_seccomp_rule_returns_its_errno(bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 28}]}
    r = bundle.sh("mkdir /tmp/x; echo rc=$?; ls /bin/busybox").run()
    assert "No space left on device" in r.stderr, r.stderr
    assert "rc=1" in r.stdout and "/bin/busybox" in r.stdout


def test_seccomp_argument_filter(bundle):
    # chmod to 0777 is refused, any other mode allowed: the mode is argument 1 of
    # chmod(2) and argument 2 of fchmodat(2)
    eq777 = lambda i: [{"index": i, "value": 0o777, "op": "SCMP_CMP_EQ"}]
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                      "args": eq777(1)},
                     {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                      "args": eq777(2)}]}
    bundle.config["root"]["readonly"] = False
    r = bundle.sh("touch /tmp/f; chmod 600 /tmp/f && echo ok600; chmod 777 /tmp/f; "
                  "echo rc=$?").run()
    assert "ok600" in r.stdout and "rc=1" in r.stdout, (r.stdout, r.stderr)
    assert "Permission denied" in r.stderr


def test_dropped_capability_refuses_its_operation(bundle):
    caps = bundle.config["process"]["capabilities"]
    bundle.config["root"]["readonly"] = False
    script = "touch /tmp/owned; chown 1234 /tmp/owned && echo chown-ok; echo rc=$?"
    for s in ("bounding", "effective", "permitted"):
        caps[s] = [c for c in caps[s] if c != "CAP_CHOWN"]
    r = bundle.sh(script).run()
    assert "chown-ok" not in r.stdout and "Operation not permitted" in r.stderr, r.stderr
    for s in ("bounding", "effective", "permitted"):
        caps[s].append("CAP_CHOWN")
    r = bundle.sh(script).run()
    assert "chown-ok" in r.stdout, r.stderr


def test_capability_sets_reach_the_process(bundle):
    caps = bundle.config["process"]["capabilities"]
    for s in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        caps[s] = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    r = bundle.sh("grep ^Cap /proc/self/status; grep NoNewPrivs /proc/self/status").run()
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(":\t") for line in r.stdout.splitlines())
    want = "%016x" % ((1 << 5) | (1 << 10))
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert fields[k].strip() == want, (k, fields[k])
    assert fields["NoNewPrivs"].strip() == "1"


def test_namespaces_differ_from_the_hosts(bundle):
    r = bundle.sh("for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done"
                  ).run()
    assert r.returncode == 0, r.stderr
    inside = r.stdout.split()
    for n, v in zip(["pid", "net", "ipc", "uts", "mnt", "cgroup"], inside):
        assert v != os.readlink(f"/proc/self/ns/{n}"), n
