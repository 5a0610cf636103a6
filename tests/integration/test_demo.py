"""`make demo`: scripts/demo.sh runs a real container and boots a microVM with $VESSEL."""
import os
import re
import stat

import pytest

from conftest import ROOT, hardware_kvm, run

DEMO = str(ROOT / "scripts" / "demo.sh")
MEM_LIMIT = 64 << 20


def field(out, label):
    m = re.search(rf"^{re.escape(label)}: (.*)$", out, re.M)
    assert m, f"no '{label}:' line in the demo output:\n{out}"
    return m.group(1)


@pytest.fixture(scope="module")
def demo(vessel):
    """One whole demo serves the tests that read it: without hardware KVM its microVM
    boots inside the emulated KVM host, which takes minutes on a busy machine."""
    return run([DEMO, vessel], timeout=900)


def test_demo_shows_hostname_pid1_namespaces_and_limits(demo):
    r = demo
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert field(out, "hostname") == "vessel"
    assert field(out, "pid") == "1"
    assert field(out, "memory limit").split()[0] == str(MEM_LIMIT)
    assert field(out, "pids limit").split()[0] == "32"
    # the container's own namespaces, each compared with the host's
    for ns in ("pid", "mnt", "uts", "ipc", "net"):
        assert re.search(rf"^namespace {ns}: {ns}:\[\d+\] +own \(host: ", out, re.M), out
        assert field(out, f"namespace {ns}").split()[0] != os.readlink(f"/proc/self/ns/{ns}")
    assert "FAIL" not in out
    assert "demo finished: all steps passed" in out


def test_demo_boots_the_default_linux_guest(demo):
    r = demo
    assert r.returncode == 0, r.stdout + r.stderr
    vm = r.stdout[r.stdout.index("== 5. microVM =="):]
    if hardware_kvm():
        assert "this host has hardware KVM" in vm, vm
    else:
        # one clear line says why the VM runs inside the emulated KVM host
        assert re.search(r"^(this host has no /dev/kvm|this host's /dev/kvm is kvm_pvm .*): "
                         r"vessel runs inside the emulated KVM host", vm, re.M), vm
    # what the guest itself reported, from its own kernel and init
    assert re.search(r"^  guest \| kernel: \d+\.\d+\S*$", vm, re.M), vm
    assert "  guest | cpus: 2\n" in vm, vm
    assert "  guest | vessel-guest: exit status 0\n" in vm, vm
    assert re.search(r"vCPUs +ok: 2 online", vm), vm
    assert "built-in tiny" not in vm


def test_demo_fails_when_the_container_fails(vessel, tmp_path):
    # the real runtime for everything but `run`, which fails like a broken container would
    wrapper = tmp_path / "vessel-run-fails"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = run ] && { echo "run: broken on purpose" >&2; exit 3; }; done\n'
        f'exec {vessel} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    r = run([DEMO, str(wrapper)], timeout=120)
    assert r.returncode != 0
    assert "exited with status 3" in r.stderr
    assert "all steps passed" not in r.stdout
