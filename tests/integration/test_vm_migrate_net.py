"""Live migration keeps the network (issue 11, docs/migration.md): a TCP connection from
the host into a migrating Linux guest survives the move. In a network namespace of the
test's, a bridge carries the host's address and two taps; the guest runs a TCP echo
server (busybox `nc -l -e cat`) behind the first tap, a client in the namespace holds one
connection to it and has lines echoed. The guest moves to a `migrate-receive
--net-override eth0=TAP2` (a tap is held by one process at a time, so the destination
takes the other one): on the same connection, lines are echoed again. The bridge learns
the guest's MAC on the new port (the old one lost its carrier with the source's exit,
and its forwarding entries with it), and TCP's retransmissions cover the switch.

Boots VMs: marked kvm (hardware KVM, or inside tests/kvmhost/run).
"""
import os
import select
import signal
import subprocess
import time

import pytest

from test_vm_api import Api, Console, spec  # noqa: F401 (fixture)
from test_vm_migrate import (BOOT_TIMEOUT, TICK_TIMEOUT, Receiver, all_ticks, consecutive,
                             exited, migrate_send)
from test_virtio_net import GUEST_IP, GUEST_MAC, HOST_IP, ip

pytestmark = pytest.mark.kvm

PORT = 7000
# the echo server (a new one for each connection, so a test that has to reconnect could;
# this one must not), and a tick so the test sees the guest run on each side
GUEST_SCRIPT = (
    f"ip addr add {GUEST_IP}/24 dev eth0 && ip link set eth0 up; "
    f"(while true; do nc -l -p {PORT} -e cat; done) & "
    "i=0; while true; do echo T:TICK $i; i=$((i+1)); sleep 0.2; done")

# One TCP connection, kept: each line on stdin goes out, the echoed line comes back on
# stdout; any error ends it (it never reconnects), saying why.
CLIENT = r"""
import socket, sys, time
deadline = time.monotonic() + 120
while True:
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        break
    except OSError as e:
        if time.monotonic() > deadline:
            print("ERR connect", e, flush=True); sys.exit(1)
        time.sleep(0.5)
s.settimeout(120)
print("CONNECTED", s.getsockname()[1], flush=True)
f = s.makefile("rb")
for line in sys.stdin:
    try:
        s.sendall(line.encode())
        back = f.readline().decode()
    except OSError as e:
        print("ERR", e, flush=True); sys.exit(1)
    print("ECHO", back.strip(), flush=True)
"""


class Client:
    def __init__(self, ns):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", CLIENT, GUEST_IP, str(PORT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1)

    def line(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().strip() if r else None

    def echo(self, text, timeout=150):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self.line(timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def net_scenario(vessel, spec, d):
    from test_linux import images_dir
    images = images_dir()
    ns = "vsmig-" + os.urandom(4).hex()
    ip("netns", "add", ns)
    wrapper = d / "vessel-in-ns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {vessel} "$@"\n')
    wrapper.chmod(0o755)
    s = {}
    procs = []
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "link", "add", "br0", "type", "bridge")
        ip("-n", ns, "addr", "add", f"{HOST_IP}/24", "dev", "br0")
        for tap in ("mtap0", "mtap1"):
            ip("-n", ns, "tuntap", "add", "dev", tap, "mode", "tap")
            ip("-n", ns, "link", "set", tap, "master", "br0")
            ip("-n", ns, "link", "set", tap, "up")
        ip("-n", ns, "link", "set", "br0", "up")

        con = Console(d / "src.txt")
        with open(con.path, "w") as stdout:
            src = Api(str(wrapper), spec, ["--id", "netsrc"], stdout=stdout)
        procs.append(src)
        src.ok("PUT", "/boot-source", {
            "kernel_image_path": str(images / "vmlinuz"),
            "initrd_path": str(images / "initrd.img"),
            "boot_args": f'console=ttyS0 panic=-1 quiet -- sh -c "{GUEST_SCRIPT}"'})
        src.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})
        src.ok("PUT", "/network-interfaces/eth0",
               {"iface_id": "eth0", "host_dev_name": "mtap0", "guest_mac": GUEST_MAC},
               "/network-interfaces/{iface_id}")
        src.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        s["booted"] = con.wait_ticks(5, BOOT_TIMEOUT, after=0)
        if not s["booted"]:
            s["console"] = con.text()[-3000:]
            return s

        client = Client(ns)
        procs.append(client)
        s["connected"] = client.line(150)
        s["before"] = [client.echo(f"before {i}") for i in range(3)]

        rx = Receiver(str(wrapper), spec, f"unix:{d}/rx.sock", d / "rx.txt",
                      ["--net-override", "eth0=mtap1"])
        procs.append(rx)
        s["send"] = migrate_send(vessel, src, rx.url)
        s["src_exit"] = exited(src.proc, 30)
        s["rx_ticked"] = rx.console.wait_ticks(5, TICK_TIMEOUT, after=0)
        t0 = time.monotonic()
        s["after"] = [client.echo(f"after {i}") for i in range(3)]
        s["after_s"] = time.monotonic() - t0
        s["client_alive"] = client.proc.poll() is None
        s["rx_api"] = rx.wait_api()
        s["rx_config"] = rx.api.ok("GET", "/vm/config") if s["rx_api"] else None
        rx.api.ok("PATCH", "/vm", {"state": "Paused"})
        time.sleep(0.5)
        s["ticks"] = all_ticks(con, rx.console)
    finally:
        for p in procs:
            if isinstance(p, Client):
                p.stop()
            else:
                p.stop(signal.SIGKILL)
        ip("netns", "del", ns, check=False)
    return s


@pytest.fixture(scope="module")
def net(vessel, spec, tmp_path_factory):
    return net_scenario(vessel, spec, tmp_path_factory.mktemp("mignet"))


def test_guest_boots_and_echoes(net):
    assert net["booted"], net.get("console")
    assert net["connected"] and net["connected"].startswith("CONNECTED"), net["connected"]
    assert net["before"] == [f"ECHO before {i}" for i in range(3)], net["before"]


def test_the_move_takes_the_other_tap(net):
    rc, out, err = net["send"]
    assert rc == 0 and "migrated to unix:" in out, (out, err)
    assert net["src_exit"][0] == 0, net["src_exit"]
    assert net["rx_ticked"]
    ifaces = net["rx_config"]["network-interfaces"]
    assert [i["host_dev_name"] for i in ifaces] == ["mtap1"], ifaces


def test_the_tcp_connection_survives_the_move(net):
    assert net["after"] == [f"ECHO after {i}" for i in range(3)], net["after"]
    assert net["client_alive"], "the client's one connection broke"
    print(f"\nfirst echoes after the move took {net['after_s']:.1f} s")


def test_the_guest_counts_on_without_a_gap(net):
    ticks = net["ticks"]
    assert ticks and ticks[0] == 0 and consecutive(ticks), ticks
