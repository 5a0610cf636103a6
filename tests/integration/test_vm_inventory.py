"""The VMs a host runs: `vessel vm list` and the overcommit policy (`--overcommit`), on
running VMMs (a spinning PVH guest: what is counted is the VMM, not what its guest does)."""
import json
import os
import signal
import subprocess

import pytest

from conftest import run
from test_vm_cli import one_error_line, wait_running
from vm_images import POWEROFF, SPIN, pvh_elf, write

pytestmark = pytest.mark.kvm


def vm_list(vessel, state):
    r = run([vessel, "vm", "--state-dir", str(state), "list", "--format", "json"], timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def mem_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def curl(sock, method, path, body=None):
    cmd = ["curl", "-sS", "--unix-socket", str(sock), "-X", method, "-w", "\n%{http_code}",
           f"http://localhost{path}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    r = run(cmd, timeout=30)
    assert r.returncode == 0, r.stderr
    text, _, code = r.stdout.rpartition("\n")
    return int(code), text


def test_list_and_overcommit(vessel, tmp_path):
    k = write(tmp_path / "spin.elf", pvh_elf(SPIN))
    state = tmp_path / "vms"
    base = [vessel, "vm", "--state-dir", str(state)]
    assert vm_list(vessel, state) == [], "no VM ran here yet"
    a = subprocess.Popen(base + ["run", "--kernel", k, "--cpus", "2", "--memory", "64M",
                                 "--balloon", "amount=16"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    b = None
    try:
        wait_running(a)
        (rec,) = vm_list(vessel, state)
        assert (rec["pid"], rec["vcpus"], rec["memory_mib"], rec["balloon_mib"]) == \
            (a.pid, 2, 64, 16), rec
        assert rec["rss_mib"] > 0, rec
        table = run(base + ["list"], timeout=30)
        assert table.returncode == 0 and str(a.pid) in table.stdout, table.stdout
        print(table.stdout)

        # a ratio that leaves exactly a's 2 vCPUs on this host: one more is refused
        ncpu = os.cpu_count()
        r = run(base + ["run", "--kernel", k, "--overcommit", f"cpu={2 / ncpu!r}"],
                timeout=30, stdin=subprocess.DEVNULL)
        one_error_line(r, 1, "overcommit: 1 more vCPU would commit 3", "1 VM running commit 2",
                       "0 free")
        # guest memory: a limit of 100 MiB holds a's 64 MiB, not 64 more
        r = run(base + ["run", "--kernel", k, "--memory", "64M", "--overcommit",
                        f"mem={100 * 2**20 / mem_total()!r}"], timeout=30,
                stdin=subprocess.DEVNULL)
        one_error_line(r, 1, "overcommit: 64 MiB more guest memory would commit 128 MiB",
                       "1 VM running commit 64 MiB")
        # the API's InstanceStart is refused the same way, with a 400, and the VMM lives on
        sock = tmp_path / "api.sock"
        b = subprocess.Popen(base + ["api", "--api-sock", str(sock), "--id", "vm-b",
                                     "--overcommit", f"cpu={2 / ncpu!r}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        for _ in range(300):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"])
        assert curl(sock, "PUT", "/boot-source", {"kernel_image_path": k})[0] == 204
        code, text = curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        assert code == 400 and "overcommit: 1 more vCPU" in json.loads(text)["fault_message"], text
        assert [x["pid"] for x in vm_list(vessel, state)] == [a.pid]

        # a VMM killed outright leaves its record; the next reader drops it
        a.kill()
        a.wait(timeout=10)
        assert (state / f"{a.pid}.json").exists()
        assert vm_list(vessel, state) == []
        assert not (state / f"{a.pid}.json").exists()
        code, text = curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        assert code == 204, text
        (rec,) = vm_list(vessel, state)
        assert (rec["pid"], rec["id"], rec["api_sock"]) == (b.pid, "vm-b", str(sock)), rec
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=10) == 128 + signal.SIGTERM
        assert vm_list(vessel, state) == [] and not (state / f"{b.pid}.json").exists()
    finally:
        for p in (a, b):
            if p:
                p.kill()
                p.communicate()


def test_bad_overcommit_and_list_usage(vessel, tmp_path):
    k = write(tmp_path / "spin.elf", pvh_elf(SPIN))
    for spec, want in (("cpu=0", "a ratio above 0"), ("disk=2", "cpu=RATIO,mem=RATIO or off"),
                       ("mem=nan", "a ratio above 0")):
        r = run([vessel, "vm", "--state-dir", str(tmp_path), "run", "--kernel", k,
                 "--overcommit", spec], timeout=30, stdin=subprocess.DEVNULL)
        one_error_line(r, 2, "--overcommit", want)
    r = run([vessel, "vm", "--state-dir", str(tmp_path), "list", "--bogus"], timeout=30)
    one_error_line(r, 1, "usage: vessel vm list")
    # off: no check at all
    r = run([vessel, "vm", "--state-dir", str(tmp_path / "s"), "run", "--kernel",
             write(tmp_path / "off.elf", pvh_elf(POWEROFF)),
             "--overcommit", "off"], timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
