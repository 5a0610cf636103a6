"""Networking of VM-isolated containers (docs/vm-containers.md, Networking): the container's
network namespace reaches the guest through a tap in that namespace, the Kata way (tc
redirects every frame between the interface and the tap, both ways); the guest's eth0
takes the interface's MAC, addresses and routes. Run in the emulated KVM host: each
container boots a real Linux guest.
"""
import json
import os
import time
import uuid

import pytest

from conftest import run
from test_vm_containers import BOOT, console, podman_vm, vessel_vm  # noqa: F401 (fixtures)

pytestmark = pytest.mark.kvm

IMAGE = "localhost/vessel-busybox:vm"


def fetch(netns_path, host, port, timeout=60):
    """What a TCP server at host:port sends, read from the network namespace netns_path
    (python in it: the static busybox's wget crashes on this host). Retried until timeout:
    the server in the guest may not listen yet."""
    # what came until the server closed or went quiet (busybox nc keeps the connection)
    script = ("import socket, sys\n"
              "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
              "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
              "data = b''\n"
              "while True:\n"
              "    try:\n"
              "        b = s.recv(65536)\n"
              "    except socket.timeout:\n"
              "        break\n"
              "    if not b: break\n"
              "    data += b\n"
              "sys.stdout.write(data.decode(errors='replace'))\n")
    argv = ["nsenter", f"--net={netns_path}", "/usr/bin/python3", "-c", script, host, str(port)]
    end = time.time() + timeout
    while True:
        r = run(argv, timeout=30)
        if r.returncode == 0 and r.stdout:
            return r.stdout
        if time.time() > end:
            pytest.fail(f"nothing from {host}:{port} in {netns_path}: {r.stderr}")
        time.sleep(1)


def in_netns(path, *argv):
    return run(["nsenter", f"--net={path}", *argv], timeout=30)


class Pair:
    """Two network namespaces joined by a veth: the container's (ctr, 10.99.0.2/24, a
    default route through .1) as podman's CNI plugins would leave it, and its peer's."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.ctr, self.peer = f"vmcn-c-{tag}", f"vmcn-p-{tag}"
        self.veth = f"vp{tag}"
        for cmd in (["ip", "netns", "add", self.ctr], ["ip", "netns", "add", self.peer],
                    ["ip", "-n", self.peer, "link", "add", self.veth, "type", "veth", "peer",
                     "name", "eth0", "netns", self.ctr],
                    ["ip", "-n", self.peer, "addr", "add", "10.99.0.1/24", "dev", self.veth],
                    ["ip", "-n", self.peer, "link", "set", self.veth, "up"],
                    ["ip", "-n", self.ctr, "link", "set", "lo", "up"],
                    ["ip", "-n", self.ctr, "link", "set", "eth0", "mtu", "1400"],
                    ["ip", "-n", self.ctr, "addr", "add", "10.99.0.2/24", "dev", "eth0"],
                    ["ip", "-n", self.ctr, "link", "set", "eth0", "up"],
                    ["ip", "-n", self.ctr, "route", "add", "default", "via", "10.99.0.1"]):
            r = run(cmd, timeout=30)
            assert r.returncode == 0, f"{cmd}: {r.stderr}"
        self.mac = json.loads(run(["ip", "-j", "-n", self.ctr, "link", "show", "eth0"],
                                  timeout=30).stdout)[0]["address"]

    def path(self, which):
        return f"/run/netns/{which}"

    def delete(self):
        for n in (self.ctr, self.peer):
            run(["ip", "netns", "delete", n], timeout=30)


def test_guest_takes_over_the_namespace_and_delete_cleans_it(bundle):
    """A bundle whose network namespace has a path (what CNI leaves): the guest's eth0 has
    the interface's MAC, address, MTU and default route, a server in the container answers
    the peer at the interface's address, and delete leaves the namespace as it was made
    (no tap, no tc), the interface and its address still there."""
    pair = Pair()
    cid = None
    try:
        ns = bundle.config["linux"]["namespaces"]
        ns[:] = [n for n in ns if n["type"] != "network"]
        ns.append({"type": "network", "path": pair.path(pair.ctr)})
        bundle.sh("cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu; "
                  "ip -4 -o addr show eth0; ip route; echo ifaces $(ls /sys/class/net); "
                  "while :; do echo hello-from-the-guest | nc -l -p 8080; done")
        bundle.config.setdefault("annotations", {})["io.vessel.isolation"] = "vm"
        cid, r = bundle.create("--pid-file", str(bundle.path / "pid"), timeout=BOOT)
        assert r.returncode == 0, r.stderr + console(bundle, cid)
        # the VMM's tap and tc's redirections, both ways, in the container's namespace
        links = in_netns(pair.path(pair.ctr), "ip", "-o", "link").stdout
        assert "vtap0" in links, links
        for dev, to in (("eth0", "vtap0"), ("vtap0", "eth0")):
            f = in_netns(pair.path(pair.ctr), "tc", "filter", "show", "dev", dev, "ingress")
            assert f"redirect to device {to}" in f.stdout.lower().replace("(egress ", ""), \
                f.stdout
        assert "vtap0: " in links and "mtu 1400" in links.split("vtap0: ")[1].split("\n")[0]
        r = bundle.cmd("start", cid)
        assert r.returncode == 0, r.stderr
        body = fetch(pair.path(pair.peer), "10.99.0.2", 8080, timeout=BOOT)
        assert "hello-from-the-guest" in body, body
        out = (bundle.path / f"{cid}.out").read_text().split("\n")
        assert out[0] == pair.mac, (out, pair.mac)
        assert out[1] == "1400", out
        text = "\n".join(out)
        assert "inet 10.99.0.2/24" in text and "default via 10.99.0.1 dev eth0" in text, text
        # the container's own namespace in the guest: lo and the interface moved in
        assert "ifaces eth0 lo" in out, out
    finally:
        r = bundle.cmd("delete", "--force", cid, timeout=60) if cid else None
        after = in_netns(pair.path(pair.ctr), "ip", "-o", "link").stdout
        qdiscs = in_netns(pair.path(pair.ctr), "tc", "qdisc", "show").stdout
        addrs = in_netns(pair.path(pair.ctr), "ip", "-o", "-4", "addr").stdout
        pair.delete()
    assert r and r.returncode == 0, r and r.stderr
    assert "vtap" not in after, after
    assert "ingress" not in qdiscs, qdiscs
    assert "10.99.0.2/24" in addrs, addrs


def test_podman_published_port_and_guest_eth0(podman_vm):  # noqa: F811
    """podman run -d -p on its default network (netavark's bridge in the test's own
    namespace): the server in the guest answers at the published port and at the
    container's address, and the guest's eth0 has the MAC and address podman gave it."""
    name = "vmcn-" + os.urandom(3).hex()
    podman_vm.ok("run", "-d", "--name", name, "-p", "18090:8080", IMAGE, "/bin/sh", "-c",
                 "mkdir -p /tmp/www && echo served-by $(uname -r) > /tmp/www/index.html && "
                 "exec httpd -f -p 8080 -h /tmp/www", timeout=BOOT)
    try:
        ip = podman_vm.inspect(name, "{{.NetworkSettings.IPAddress}}")
        mac = podman_vm.inspect(name, "{{.NetworkSettings.MacAddress}}")
        gw = podman_vm.inspect(name, "{{.NetworkSettings.Gateway}}")
        netns = podman_vm.netns.path
        body = fetch(netns, ip, 8080, timeout=BOOT)
        kernel = body.strip().split()[-1]
        assert "served-by" in body and kernel != os.uname().release and "cloud" in kernel, body
        # -p: netavark's DNAT to the container's address, unchanged
        body = fetch(netns, gw, 18090)
        assert "served-by" in body, body
        r = podman_vm("exec", name, "/bin/sh", "-c",
                      "cat /sys/class/net/eth0/address; ip -4 -o addr show eth0")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split("\n")[0] == mac, (r.stdout, mac)
        assert f"inet {ip}/" in r.stdout, r.stdout
    finally:
        podman_vm.ok("rm", "--force", "--time", "0", name, timeout=90)


def test_podman_two_vm_containers_reach_each_other(podman_vm):  # noqa: F811
    """Two VM-isolated containers on one podman network: the second reaches the first by
    its address (bridge -> veth -> tap -> guest, and back)."""
    net = "vmcn" + os.urandom(2).hex()
    podman_vm.ok("network", "create", "--subnet", "10.123.0.0/24", net)
    a = "vmcn-a-" + os.urandom(3).hex()
    try:
        podman_vm.ok("run", "-d", "--name", a, "--network", net, IMAGE, "/bin/sh", "-c",
                     "while :; do echo hello-from-a | nc -l -p 7000; done", timeout=BOOT)
        ip = podman_vm.inspect(a, "{{(index .NetworkSettings.Networks \"%s\").IPAddress}}"
                               % net)
        assert ip.startswith("10.123.0."), ip
        r = podman_vm("run", "--rm", "--network", net, IMAGE, "/bin/sh", "-c",
                      f"for i in 1 2 3 4 5 6 7 8 9 10; do out=$(nc -w 3 {ip} 7000); "
                      f"case $out in *hello-from-a*) echo $out; exit 0;; esac; sleep 1; "
                      f"done; exit 1", timeout=BOOT)
        assert r.returncode == 0 and "hello-from-a" in r.stdout, (r.returncode, r.stdout,
                                                                   r.stderr)
    finally:
        podman_vm("rm", "--force", "--time", "0", a, timeout=90)
        podman_vm("network", "rm", "--force", net, timeout=60)
