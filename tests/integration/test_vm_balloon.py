"""virtio-balloon and KSM (issue 10 section 3), on the default guest (its initramfs loads
virtio_balloon).

Without a guest (anywhere): the balloon's API bodies and the calls that are wrong before
boot, and `--balloon` specs that vessel refuses. With a guest (marked kvm: hardware KVM or
inside tests/kvmhost/run):
  - a guest touches 200 MiB and frees it; inflating the balloon by 150 MiB lowers the VMM's
    RSS by about that much, the guest's MemTotal with it; deflating gives it back;
  - the statistics the guest reports (GET /balloon/statistics);
  - deflate_on_oom: with the balloon holding most of its RAM, the guest allocates past
    what is left and survives (its driver deflates);
  - --merge: identical guests share their pages through the host's KSM, and without it
    they do not. Figures are printed (pytest -s, or the -rA summary)."""
import os
import pathlib
import re
import signal
import subprocess
import time

import pytest

from test_vm_api import Api, Console, spec  # noqa: F401  (spec is a fixture)

MIB = 1 << 20
BOOT_TIMEOUT = 240  # the emulated host boots a guest in 10-30 s, slower while others run


def images():
    from test_linux import images_dir
    return images_dir()


def vmrss(pid):
    """The VMM's resident set, in bytes."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def wait_for(what, fn, timeout, every=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(every)
    return None


# The guest's side: lines the host waits for. No double quotes (a kernel command line
# cannot carry them).
MEMLINE = ("echo T:MEM $(awk '/MemTotal/{print $2}' /proc/meminfo) "
           "$(awk '/MemAvailable/{print $2}' /proc/meminfo)")


def guest_cmd(script):
    return f'console=ttyS0 panic=-1 quiet -- sh -c "{script}"'


# ------------------------------------------------------------------ without a guest

@pytest.fixture
def api(vessel, spec):  # noqa: F811
    a = Api(vessel, spec, ["--id", "balloon_api"])
    yield a
    a.stop()


def test_put_get_patch_before_boot(api):
    body = {"amount_mib": 64, "deflate_on_oom": True, "stats_polling_interval_s": 2}
    api.ok("PUT", "/balloon", body)
    got = api.ok("GET", "/balloon")
    assert got["amount_mib"] == 64 and got["deflate_on_oom"] is True, got
    assert got["stats_polling_interval_s"] == 2, got
    # Firecracker: PATCH before or after boot; before, it changes the description
    api.ok("PATCH", "/balloon", {"amount_mib": 32})
    api.ok("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 5})
    got = api.ok("GET", "/balloon")
    assert got["amount_mib"] == 32 and got["stats_polling_interval_s"] == 5, got
    assert api.ok("GET", "/vm/config")["balloon"]["amount_mib"] == 32


@pytest.mark.parametrize("body,field", [
    ({"amount_mib": 4096, "deflate_on_oom": False}, "amount_mib"),  # RAM is 128 MiB
    ({"amount_mib": "64", "deflate_on_oom": False}, "amount_mib"),
    ({"amount_mib": -1, "deflate_on_oom": False}, "amount_mib"),
    ({"amount_mib": 10}, "deflate_on_oom"),
    ({"deflate_on_oom": True}, "amount_mib"),
    ({"amount_mib": 10, "deflate_on_oom": "yes"}, "deflate_on_oom"),
    ({"amount_mib": 10, "deflate_on_oom": True, "stats_polling_interval_s": -3},
     "stats_polling_interval_s"),
    ({"amount_mib": 10, "deflate_on_oom": True, "free_page_hinting": True}, "free_page_hinting"),
    ({"amount_mib": 10, "deflate_on_oom": True, "bogus": 1}, "bogus"),
])
def test_put_bad_bodies_name_the_field(api, body, field):
    msg = api.fault("PUT", "/balloon", body, "/balloon")
    assert field in msg, msg
    assert api.call("GET", "/balloon")[0] == 400  # nothing was kept


def test_calls_that_need_a_balloon_or_a_guest(api):
    assert "balloon" in api.fault("GET", "/balloon", pattern="/balloon")
    assert "balloon" in api.fault("PATCH", "/balloon", {"amount_mib": 1}, "/balloon")
    api.ok("PUT", "/balloon", {"amount_mib": 16, "deflate_on_oom": False})
    msg = api.fault("GET", "/balloon/statistics", pattern="/balloon/statistics")
    assert "not started" in msg, msg
    msg = api.fault("PATCH", "/balloon", {"amount_mib": 1, "deflate_on_oom": True}, "/balloon")
    assert "deflate_on_oom" in msg, msg
    msg = api.fault("PATCH", "/balloon", {"amount_mib": 129}, "/balloon")
    assert "amount_mib" in msg and "128" in msg, msg
    msg = api.fault("PATCH", "/balloon/statistics", {"stats_polling_interval_s": "x"},
                    "/balloon/statistics")
    assert "stats_polling_interval_s" in msg, msg
    assert api.ok("GET", "/balloon")["amount_mib"] == 16


@pytest.mark.parametrize("spec_,words", [
    ("stats=1", "amount=MiB is required"),
    ("amount=12x", "amount=12x"),
    ("amount=1,bogus", "bogus"),
    ("amount=1,stats=100000", "stats"),
    ("amount=1,,stats=1", "stray"),
])
def test_cli_refuses_bad_specs(vessel, spec_, words):
    r = subprocess.run([vessel, "vm", "run", "--balloon", spec_], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "--balloon" in r.stderr and words in r.stderr, r.stderr


# ------------------------------------------------------------------ with a guest

class Guest:
    """`vessel vm api` with the default image booted through the API."""

    def __init__(self, vessel, spec, d, script, mem_mib, balloon):  # noqa: F811
        self.out = d / "console.txt"
        with open(self.out, "w") as stdout:
            self.api = Api(vessel, spec, ["--id", "balloon_vm"], stdout=stdout)
        self.con = Console(self.out)
        img = images()
        self.api.ok("PUT", "/boot-source", {
            "kernel_image_path": str(img / "vmlinuz"),
            "initrd_path": str(img / "initrd.img"),
            "boot_args": guest_cmd(script)})
        self.api.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mem_mib})
        self.api.ok("PUT", "/balloon", balloon)
        self.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})

    def text(self):
        return self.con.text()

    def wait_line(self, tag, timeout):
        return wait_for(tag, lambda: re.search(rf"^T:{tag}\b.*$", self.text(), re.M),
                        timeout)

    def mem(self):
        """The guest's last (MemTotal, MemAvailable), in bytes."""
        m = re.findall(r"T:MEM (\d+) (\d+)", self.text())
        return (int(m[-1][0]) * 1024, int(m[-1][1]) * 1024) if m else None

    def stats(self):
        return self.api.ok("GET", "/balloon/statistics")

    def stop(self):
        return self.api.stop(signal.SIGTERM)

    def __str__(self):
        return f"--- console (end):\n{self.text()[-3000:]}"


FILL = ("mkdir /t; mount -t tmpfs -o size=240m tmpfs /t; "
        "dd if=/dev/zero of=/t/f bs=1M count=200 2>/dev/null; rm /t/f; echo T:FILLED; "
        f"while true; do {MEMLINE}; sleep 1; done")


@pytest.fixture(scope="module")
def inflated(vessel, spec, tmp_path_factory):  # noqa: F811
    """200 MiB touched and freed, then inflate by 150 MiB, then deflate: what was seen."""
    g = Guest(vessel, spec, tmp_path_factory.mktemp("balloon"), FILL, 320,
              {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 1})
    seen = {"guest": g}
    try:
        seen["filled"] = bool(g.wait_line("FILLED", BOOT_TIMEOUT))
        if not seen["filled"]:
            return seen
        wait_for("a MEM line", g.mem, 60)
        time.sleep(2)
        seen["rss_before"] = vmrss(g.api.proc.pid)
        seen["mem_before"] = g.mem()
        seen["stats_before"] = g.stats()
        g.api.ok("PATCH", "/balloon", {"amount_mib": 150})
        seen["inflated"] = wait_for("actual 150", lambda: g.stats()["actual_mib"] >= 150, 180)
        time.sleep(3)  # two MEM lines and a stats refresh after the last page
        seen["rss_inflated"] = vmrss(g.api.proc.pid)
        seen["mem_inflated"] = g.mem()
        seen["stats_inflated"] = g.stats()
        seen["put_after_start"] = g.api.call("PUT", "/balloon",
                                             {"amount_mib": 1, "deflate_on_oom": False})
        seen["patch_too_big"] = g.api.call("PATCH", "/balloon", {"amount_mib": 321})
        seen["stats_off"] = g.api.call("PATCH", "/balloon/statistics",
                                       {"stats_polling_interval_s": 0})
        seen["stats_2"] = g.api.call("PATCH", "/balloon/statistics",
                                     {"stats_polling_interval_s": 2})
        g.api.ok("PATCH", "/balloon", {"amount_mib": 0})
        seen["deflated"] = wait_for("actual 0", lambda: g.stats()["actual_mib"] == 0, 180)
        time.sleep(3)
        seen["mem_deflated"] = g.mem()
        seen["get_balloon"] = g.api.ok("GET", "/balloon")
    finally:
        seen["rc"], seen["err"] = g.stop()
    return seen


def show(seen):
    return (f"{ {k: v for k, v in seen.items() if k not in ('guest', 'err')} }\n"
            f"{seen['guest']}\n--- stderr:\n{seen['err'][-2000:]}")


@pytest.mark.kvm
def test_inflate_returns_the_pages_to_the_host(inflated):
    s = inflated
    assert s["filled"] and s["inflated"], show(s)
    drop = s["rss_before"] - s["rss_inflated"]
    print(f"\nballoon 150 MiB: VMM RSS {s['rss_before'] / MIB:.1f} -> "
          f"{s['rss_inflated'] / MIB:.1f} MiB (-{drop / MIB:.1f} MiB); guest MemTotal "
          f"{s['mem_before'][0] / MIB:.1f} -> {s['mem_inflated'][0] / MIB:.1f} MiB")
    # the guest's freed pages were resident; its driver may pick some it never touched
    assert drop >= 100 * MIB, show(s)
    assert s["mem_before"][0] - s["mem_inflated"][0] >= 145 * MIB, show(s)


@pytest.mark.kvm
def test_deflate_gives_the_memory_back(inflated):
    s = inflated
    assert s["deflated"] and s["mem_deflated"], show(s)
    assert abs(s["mem_deflated"][0] - s["mem_before"][0]) <= 1 * MIB, show(s)
    assert s["get_balloon"]["amount_mib"] == 0, show(s)


@pytest.mark.kvm
def test_statistics_are_the_guests(inflated, spec):  # noqa: F811
    from test_vm_api import check_schema
    s = inflated
    st = s["stats_before"]
    check_schema(spec, {"$ref": "#/definitions/BalloonStats"}, st, "stats")
    for k in ("free_memory", "total_memory", "available_memory", "disk_caches",
              "major_faults", "minor_faults"):
        assert k in st, st
    # the guest's figure and its own /proc/meminfo agree (both its MemTotal)
    assert abs(st["total_memory"] - s["mem_before"][0]) <= 1 * MIB, show(s)
    inf = s["stats_inflated"]
    assert inf["target_mib"] == 150 and inf["actual_mib"] == 150, inf
    assert inf["target_pages"] == 150 * 256 and inf["actual_pages"] == 150 * 256, inf
    assert st["total_memory"] - inf["total_memory"] >= 145 * MIB, (st, inf)


@pytest.mark.kvm
def test_running_balloon_refuses_what_it_must(inflated):
    s = inflated
    status, body = s["put_after_start"]
    assert status == 400 and "InstanceStart" in body["fault_message"], body
    status, body = s["patch_too_big"]
    assert status == 400 and "amount_mib" in body["fault_message"], body
    status, body = s["stats_off"]
    assert status == 400 and "stats_polling_interval_s" in body["fault_message"], body
    assert s["stats_2"][0] == 204, s["stats_2"]


# The guest waits for the balloon to hold 150 of its 256 MiB (MemAvailable falls under
# 60 MiB), gives the host 8 s to read the figures, then writes 150 MiB into a tmpfs: far
# more than is left, so only the driver deflating on OOM saves it.
OOM = ("mkdir /t; mount -t tmpfs -o size=240m tmpfs /t; echo T:READY; "
       "while [ $(awk '/MemAvailable/{print $2}' /proc/meminfo) -gt 61440 ]; do sleep 1; done; "
       f"echo T:INFLATED; {MEMLINE}; sleep 8; "
       "dd if=/dev/zero of=/t/f bs=1M count=150 2>/dev/null; echo T:ALLOC $?; "
       f"ls -l /t/f; {MEMLINE}; sleep 1000")


@pytest.mark.kvm
def test_deflate_on_oom_lets_the_guest_allocate(vessel, spec, tmp_path):  # noqa: F811
    g = Guest(vessel, spec, tmp_path, OOM, 256,
              {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1})
    try:
        assert g.wait_line("READY", BOOT_TIMEOUT), g
        g.api.ok("PATCH", "/balloon", {"amount_mib": 150})
        assert g.wait_line("INFLATED", 180), g
        before = wait_for("inflated", lambda: (lambda s: s if s["actual_mib"] >= 150 else None)(
            g.stats()), 8, 0.2) or g.stats()
        assert g.wait_line("ALLOC", 300), g
        after = wait_for("stats", lambda: g.stats() if len(re.findall("T:MEM", g.text())) >= 2
                         else None, 30)
    finally:
        rc, err = g.stop()
    text = g.text()
    print(f"\ndeflate_on_oom: balloon {before['actual_mib']} MiB before, "
          f"{after['actual_mib']} MiB after the guest wrote 150 MiB (of its 256) to a tmpfs")
    assert before["actual_mib"] >= 150, before
    assert re.search(r"^T:ALLOC 0\b", text, re.M), text[-3000:]
    assert "Killed process" not in text and "Out of memory" not in text, text[-3000:]
    assert f"{150 * MIB}" in text, text[-3000:]  # ls -l: the file is whole
    assert after["actual_mib"] <= 60, after  # the guest's driver deflated to get its memory
    assert after["target_mib"] == 150, after  # the host's target stays


# ------------------------------------------------------------------ KSM

KSM = pathlib.Path("/sys/kernel/mm/ksm")
# The 8. They boot one after another (the next once the last is ready): 8 booting at
# once under the emulated host's TCG did not all boot within the wait
N_GUESTS = 8
# the tmpfs sized for the 48 MiB (its default, half of what the guest sees, fell short)
FILL_KSM = ("mkdir /t; mount -t tmpfs -o size=60m tmpfs /t; "
            "dd if=/dev/zero bs=1M count=48 2>/dev/null | tr '\\0' v > /t/f; echo T:READY; "
            "sleep 1000")


def meminfo(key):
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(key)


def ksm_read(name):
    return int((KSM / name).read_text())


@pytest.fixture(scope="module")
def ksm():
    if not KSM.is_dir():
        pytest.fail("this host's kernel has no KSM (/sys/kernel/mm/ksm)")
    names = ("run", "pages_to_scan", "sleep_millisecs")
    old = {n: (KSM / n).read_text().strip() for n in names}
    # fast scanning: the emulated host's ksmd is slow; restored after
    (KSM / "pages_to_scan").write_text("20000")
    (KSM / "sleep_millisecs").write_text("10")
    (KSM / "run").write_text("1")
    yield
    for n in ("run", "pages_to_scan", "sleep_millisecs"):
        (KSM / n).write_text(old[n])


def run_identical_guests(vessel, tmp_path, merge):
    img = images()
    base = meminfo("MemAvailable")
    sharing0 = ksm_read("pages_sharing")
    procs, outs = [], []
    try:
        for i in range(N_GUESTS):
            out = tmp_path / f"g{i}-{merge}.txt"
            outs.append(out)
            args = [vessel, "vm", "run", "--memory", "128M", "--kernel", str(img / "vmlinuz"),
                    "--initrd", str(img / "initrd.img"),
                    "--cmdline", "console=ttyS0 panic=-1 quiet"]
            if merge:
                args.append("--merge")
            # ksmd pauses (its merged pages stay merged) while a guest boots: in CI a guest
            # booting while the fast scan merged its 6 running peers triple-faulted 1.2 s
            # into its boot, under the emulated host's TCG nested paging (not seen in the
            # runs before); merging the booted guests is what the test is about
            (KSM / "run").write_text("0")
            with open(out, "w") as f:
                procs.append(subprocess.Popen(args + ["--", "sh", "-c", FILL_KSM],
                                              stdin=subprocess.DEVNULL, stdout=f,
                                              stderr=subprocess.STDOUT))
            ready = wait_for(f"guest {i} ready",
                             lambda: "T:READY" in out.read_text(errors="replace"),
                             BOOT_TIMEOUT, 1)
            assert ready, (out.name, out.read_text(errors="replace")[-1500:])
            assert "No space left" not in out.read_text(errors="replace"), out.name
            (KSM / "run").write_text("1")
        # KSM needs two passes over a page to merge it: wait until sharing stops growing
        last, stable = -1, 0
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and stable < 3:
            time.sleep(5)
            cur = ksm_read("pages_sharing")
            stable = stable + 1 if cur == last else 0
            last = cur
        rss = [vmrss(p.pid) for p in procs]
        return {"used": base - meminfo("MemAvailable"),
                "sharing": ksm_read("pages_sharing") - sharing0,
                "shared": ksm_read("pages_shared"),
                "rss": rss}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        time.sleep(2)


@pytest.mark.kvm
def test_merge_shares_identical_guests_pages(vessel, tmp_path, ksm):
    plain = run_identical_guests(vessel, tmp_path, merge=False)
    merged = run_identical_guests(vessel, tmp_path, merge=True)
    one = sum(plain["rss"]) / N_GUESTS
    print(f"\nKSM, {N_GUESTS} identical 128 MiB guests (48 MiB of one pattern each, "
          f"in {os.uname().release}):\n"
          f"  without --merge: host used {plain['used'] / MIB:.0f} MiB, pages_sharing "
          f"+{plain['sharing']}, VMM RSS {[round(r / MIB) for r in plain['rss']]} MiB\n"
          f"  with --merge:    host used {merged['used'] / MIB:.0f} MiB, pages_sharing "
          f"+{merged['sharing']} ({merged['sharing'] * 4096 / MIB:.0f} MiB), pages_shared "
          f"{merged['shared']}\n"
          f"  one guest: {one / MIB:.0f} MiB RSS; {N_GUESTS} x one = "
          f"{N_GUESTS * one / MIB:.0f} MiB")
    assert plain["sharing"] < 256, plain  # ~0: nothing of theirs is mergeable
    assert merged["sharing"] * 4096 >= N_GUESTS * 40 * MIB, merged
    # the guests' RAM counted once where it is the same: well under N x one guest
    assert merged["used"] < 0.6 * plain["used"], (plain, merged)
    assert merged["used"] < 0.6 * N_GUESTS * one, (merged, one)


@pytest.mark.kvm
def test_cli_balloon_larger_than_ram_is_refused_at_build(vessel):
    img = images()
    for extra, words in ((["--balloon", "amount=100"], "amount_mib 100: more than the guest's 64 MiB"),
                         (["--balloon", "amount=1", "--balloon", "amount=2"], "one balloon")):
        r = subprocess.run([vessel, "vm", "run", "--memory", "64M", "--kernel",
                            str(img / "vmlinuz"), "--initrd", str(img / "initrd.img"), *extra],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and words in r.stderr, (r.returncode, r.stderr)


# ------------------------------------------------------------------ snapshots

TICKER = f"echo T:READY; while true; do {MEMLINE}; sleep 1; done"


@pytest.mark.kvm
def test_balloon_survives_a_snapshot(vessel, spec, tmp_path):  # noqa: F811
    """Inflated, paused (the kept statistics buffer goes back), snapshotted, loaded into a new
    VMM: the target is still there, statistics still come, and the guest's driver deflates
    and inflates on the loaded VM's word. The clone's RSS is printed, not bounded: its RAM
    is the memory file, paged in on demand, so the pages the balloon takes were mostly never
    resident in it."""
    a = Guest(vessel, spec, tmp_path, TICKER, 256,
              {"amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 1})
    seen = {}
    try:
        assert a.wait_line("READY", BOOT_TIMEOUT), a
        a.api.ok("PATCH", "/balloon", {"amount_mib": 64})
        assert wait_for("64", lambda: a.stats()["actual_mib"] == 64, 120), a
        a.api.ok("PATCH", "/vm", {"state": "Paused"})
        a.api.ok("PUT", "/snapshot/create", {"snapshot_path": str(tmp_path / "s.state"),
                                             "mem_file_path": str(tmp_path / "s.mem")})
    finally:
        a.stop()
    out = tmp_path / "b.txt"
    with open(out, "w") as stdout:
        b = Api(vessel, spec, ["--id", "balloon_clone"], stdout=stdout)
    con = Console(out)
    try:
        b.ok("PUT", "/snapshot/load", {
            "snapshot_path": str(tmp_path / "s.state"),
            "mem_backend": {"backend_path": str(tmp_path / "s.mem"), "backend_type": "File"},
            "resume_vm": True})
        seen["get"] = b.ok("GET", "/balloon")
        st0 = b.ok("GET", "/balloon/statistics")
        seen["stats_after_load"] = st0
        # fresh figures from the loaded guest: its minor fault count moves on
        seen["refreshed"] = wait_for("a refresh", lambda: b.ok("GET", "/balloon/statistics")
                                     ["minor_faults"] != st0.get("minor_faults"), 60)
        b.ok("PATCH", "/balloon", {"amount_mib": 0})
        seen["deflated"] = wait_for("0", lambda: b.ok("GET", "/balloon/statistics")
                                    ["actual_mib"] == 0, 120)
        # the guest touches its memory again (MEM lines), then gives 100 MiB back
        time.sleep(3)
        seen["rss_before"] = vmrss(b.proc.pid)
        b.ok("PATCH", "/balloon", {"amount_mib": 100})
        seen["inflated"] = wait_for("100", lambda: b.ok("GET", "/balloon/statistics")
                                    ["actual_mib"] == 100, 120)
        seen["rss_after"] = vmrss(b.proc.pid)
        seen["mem_lines"] = len(re.findall(r"T:MEM", con.text()))
    finally:
        rc, err = b.stop()
    msg = f"{seen}\n{con.text()[-2000:]}\n{err[-2000:]}"
    assert seen["get"]["amount_mib"] == 64, msg
    assert seen["stats_after_load"]["actual_mib"] == 64, msg
    assert seen["refreshed"] and seen["deflated"] and seen["inflated"], msg
    assert seen["mem_lines"] > 0, msg  # the guest runs on
    print(f"\nloaded clone: balloon 0 -> 100 MiB, VMM RSS {seen['rss_before'] / MIB:.1f} -> "
          f"{seen['rss_after'] / MIB:.1f} MiB")
