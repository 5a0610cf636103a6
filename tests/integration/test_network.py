"""CNI networks (src/network/): every test runs in a network and mount namespace of its
own (a holder process made by unshare), so the host's links, routes and iptables are
never touched; the store is a temporary directory."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

SUBNET = "10.213.7.0/24"
GATEWAY = "10.213.7.1"


class Sandbox:
    def __init__(self, vessel):
        self.vessel = vessel
        self.store = tempfile.mkdtemp(prefix="vessel-net-")
        # the holder keeps the namespaces alive; every command enters them
        self.holder = subprocess.Popen(["unshare", "-n", "-m", "--propagation", "private",
                                        "sleep", "600"])
        deadline = time.time() + 5
        me = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{self.holder.pid}/ns/net") == me:
            assert time.time() < deadline, "unshare did not make a netns"
            time.sleep(0.01)
        self.sh("ip link set lo up")

    def enter(self):
        return ["nsenter", "-t", str(self.holder.pid), "-n", "-m"]

    def run(self, *args, check=True, timeout=60):
        p = subprocess.run(self.enter() + [self.vessel, "network", "--store", self.store,
                                           *args], capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert p.returncode == 0, f"{args}: rc={p.returncode} {p.stderr}"
        return p

    def sh(self, cmd, check=True, timeout=60):
        p = subprocess.run(self.enter() + ["sh", "-c", cmd], capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert p.returncode == 0, f"{cmd}: rc={p.returncode} {p.stderr}"
        return p

    def in_ctr(self, cid, cmd, **kw):
        return self.sh(f"nsenter --net={self.store}/run/netns/{cid} {cmd}", **kw)

    def popen_in_ctr(self, cid, argv):
        return subprocess.Popen(self.enter() + ["nsenter", f"--net={self.store}/run/netns/{cid}",
                                                *argv], stdout=subprocess.PIPE, text=True)

    def close(self):
        for cid in os.listdir(os.path.join(self.store, "run", "netns")) \
                if os.path.isdir(os.path.join(self.store, "run", "netns")) else []:
            for net in os.listdir(os.path.join(self.store, "network-attach")):
                self.run("detach", net, cid, check=False)
        self.holder.kill()
        self.holder.wait()
        shutil.rmtree(self.store, ignore_errors=True)


@pytest.fixture
def sb(vessel):
    for tool in ("unshare", "nsenter", "ip", "iptables-save", "tc"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: scripts/deps.sh installs it", pytrace=False)
    if not os.path.exists("/usr/lib/cni/bridge"):
        pytest.fail("containernetworking-plugins is missing: scripts/deps.sh installs it",
                    pytrace=False)
    s = Sandbox(vessel)
    yield s
    s.close()


def attach(sb, cid, *extra):
    out = sb.run("attach", "n1", cid, "--hostname", cid, *extra).stdout
    return json.loads(out)


# a tiny TCP server/client in python, run inside a container's netns; the server takes
# both families (a v4-mapped IPv6 socket)
SERVE = ("import socket,sys\n"
         "s=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
         "s.bind(('::', int(sys.argv[1]))); s.listen(4); print('ready', flush=True)\n"
         "n=int(sys.argv[2])\n"
         "while True:\n"
         "  c,_=s.accept(); c.sendall(b'x'*n if n else b'hello'); c.close()\n")


def serve(sb, cid, port, nbytes=0):
    p = sb.popen_in_ctr(cid, ["/usr/bin/python3", "-c", SERVE, str(port), str(nbytes)])
    assert p.stdout.readline().strip() == "ready"
    return p


def fetch(sb, where, ip, port, timeout=10):
    """Reads what a server sends; where is a container id or None (the host side)."""
    code = ("import socket,sys,time\n"
            f"c=socket.create_connection(('{ip}', {port}), timeout={timeout}); t=time.time(); n=0\n"
            "while True:\n"
            "  b=c.recv(65536)\n"
            "  if not b: break\n"
            "  n+=len(b)\n"
            "print(n, time.time()-t)\n")
    cmd = f"/usr/bin/python3 -c \"{code}\""
    p = sb.in_ctr(where, cmd, check=False) if where else sb.sh(cmd, check=False)
    assert p.returncode == 0, p.stderr
    n, secs = p.stdout.split()
    return int(n), float(secs)


def test_create_ls_inspect_rm(sb):
    sb.run("create", "n1", "--subnet", SUBNET)
    ls = sb.run("ls").stdout
    assert "n1" in ls and SUBNET in ls
    assert "vessel" in ls  # the default network exists from the first use
    info = json.loads(sb.run("inspect", "n1").stdout)
    assert info["subnet"] == SUBNET and info["containers"] == 0
    types = [p["type"] for p in info["conflist"]["plugins"]]
    assert types == ["bridge", "portmap", "firewall", "tuning", "bandwidth"]
    assert info["conflist"]["cniVersion"] == "1.0.0"
    dup = sb.run("create", "n1", check=False)
    assert dup.returncode != 0 and "n1" in dup.stderr
    sb.run("rm", "n1")
    assert "n1" not in sb.run("ls").stdout
    assert sb.run("inspect", "n1", check=False).returncode != 0


def test_default_network_avoids_host_routes(sb):
    # a host route over 10.89.0.0/16 pushes the default network elsewhere
    sb.sh("ip route add 10.89.0.0/16 dev lo")
    info = json.loads(sb.run("inspect", "vessel").stdout)
    assert info["subnet"] not in ("10.89.0.0/16",)


def test_reach_gateway_and_peer(sb):
    sb.run("create", "n1", "--subnet", SUBNET)
    a = attach(sb, "c1")
    b = attach(sb, "c2")
    assert a["ip"].startswith("10.213.7.") and a["gateway"] == GATEWAY
    assert a["ip"] != b["ip"] and a["mac"]
    assert json.loads(sb.run("inspect", "n1").stdout)["containers"] == 2
    rm = sb.run("rm", "n1", check=False)
    assert rm.returncode != 0 and "attached" in rm.stderr
    assert len(rm.stderr.strip().splitlines()) == 1
    # the peer, by IP
    srv = serve(sb, "c2", 8000)
    try:
        assert fetch(sb, "c1", b["ip"].split("/")[0], 8000)[0] == 5
    finally:
        srv.kill()
    # the gateway: a server on the host side of the bridge
    host = subprocess.Popen(sb.enter() + ["/usr/bin/python3", "-c", SERVE, "8001", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "ready"
        assert fetch(sb, "c1", GATEWAY, 8001)[0] == 5
    finally:
        host.kill()


def test_port_mapping_answers_from_host(sb):
    sb.run("create", "n1", "--subnet", SUBNET)
    attach(sb, "c1", "-p", "18080:80/tcp")
    srv = serve(sb, "c1", 80)
    try:
        assert fetch(sb, None, GATEWAY, 18080)[0] == 5
    finally:
        srv.kill()


def test_rate_cap(sb):
    rate = 8_000_000  # bits/s
    sb.run("create", "n1", "--subnet", SUBNET)
    a = attach(sb, "c1", "--net-rate", str(rate))
    nbytes = 4_000_000  # 4 s at the cap
    srv = serve(sb, "c1", 8000, nbytes)
    try:
        n, secs = fetch(sb, None, a["ip"].split("/")[0], 8000, timeout=30)
    finally:
        srv.kill()
    assert n == nbytes
    measured = n * 8 / secs
    # the burst (a tenth of a second) lets a little through at line rate: 4 s absorbs it
    assert abs(measured - rate) / rate < 0.10, f"{measured:.0f} bit/s against {rate}"


def test_detach_removes_everything(sb):
    sb.run("create", "n1", "--subnet", SUBNET)
    a = attach(sb, "c1", "-p", "18080:80", "--net-rate", "1000000")
    ip = a["ip"].split("/")[0]
    links = sb.sh("ip -o link show type veth").stdout
    assert links.strip(), "no veth after attach"
    rules = sb.sh("iptables-save").stdout
    assert ip in rules
    lease = os.path.join(sb.store, "network-ipam", "n1", ip)
    assert os.path.exists(lease)
    sb.run("detach", "n1", "c1")
    assert sb.sh("ip -o link show type veth").stdout.strip() == ""
    rules = sb.sh("iptables-save").stdout
    assert ip not in rules and "CNI-DN-" not in rules, rules
    assert not os.path.exists(lease)
    assert not os.path.exists(os.path.join(sb.store, "run", "netns", "c1"))
    # DEL twice is fine
    sb.run("detach", "n1", "c1")
    sb.run("rm", "n1")


def test_bad_subnet_is_one_line(sb):
    p = sb.run("create", "n1", "--subnet", "10.300.0.0/24", check=False)
    assert p.returncode != 0
    assert len(p.stderr.strip().splitlines()) == 1 and "10.300.0.0/24" in p.stderr


def test_missing_plugin_is_one_line(sb):
    sb.run("create", "n1", "--subnet", SUBNET)
    path = os.path.join(sb.store, "networks", "n1.conflist")
    conf = json.load(open(path))
    conf["plugins"].append({"type": "no-such-plugin"})
    json.dump(conf, open(path, "w"))
    p = sb.run("attach", "n1", "c1", check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-plugin" in lines[0], p.stderr
    # the failed ADD was undone: no lease, no veth
    assert sb.sh("ip -o link show type veth").stdout.strip() == ""
    leases = os.listdir(os.path.join(sb.store, "network-ipam", "n1"))
    assert not [f for f in leases if f.startswith("10.")]


def test_plugin_error_message_is_one_line(sb):
    # an overlapping second network on the same bridge name is refused by the bridge plugin
    sb.run("create", "n1", "--subnet", SUBNET)
    path = os.path.join(sb.store, "networks", "n1.conflist")
    conf = json.load(open(path))
    conf["plugins"][0]["ipam"]["ranges"] = [[{"subnet": "10.213.7.0/33"}]]
    json.dump(conf, open(path, "w"))
    p = sb.run("attach", "n1", "c1", check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "plugin bridge" in lines[0], p.stderr


def test_tuning_with_a_setting_runs(sb):
    """tuning with nothing to set sits out the chain (cni_plugin_idle); given a setting, it
    runs and the setting lands in the container's netns."""
    sb.run("create", "n1", "--subnet", SUBNET)
    attach(sb, "c1")
    assert sb.in_ctr("c1", "cat /proc/sys/net/ipv4/conf/eth0/arp_ignore").stdout.strip() == "0"
    path = os.path.join(sb.store, "networks", "n1.conflist")
    conf = json.load(open(path))
    (tuning,) = [p for p in conf["plugins"] if p["type"] == "tuning"]
    tuning["sysctl"] = {"net.ipv4.conf.eth0.arp_ignore": "1"}
    json.dump(conf, open(path, "w"))
    attach(sb, "c2")
    assert sb.in_ctr("c2", "cat /proc/sys/net/ipv4/conf/eth0/arp_ignore").stdout.strip() == "1"
    sb.run("check", "n1", "c2")
    sb.run("detach", "n1", "c2")
    sb.run("detach", "n1", "c1")
    assert sb.sh("ip -o link show type veth").stdout.strip() == ""


# Dual-stack: a subnet of each family, as `podman network create --ipv6 --subnet A --subnet B`
SUBNET6 = "fd42:213:7::/64"
GATEWAY6 = "fd42:213:7::1"


def test_dual_stack_create_inspect_ls(sb):
    sb.run("create", "n1", "--subnet", SUBNET, "--subnet", SUBNET6)
    info = json.loads(sb.run("inspect", "n1").stdout)
    assert info["subnets"] == [SUBNET, SUBNET6] and info["subnet"] == SUBNET
    ipam = info["conflist"]["plugins"][0]["ipam"]
    assert ipam["ranges"] == [[{"subnet": SUBNET}], [{"subnet": SUBNET6}]]
    assert {r["dst"] for r in ipam["routes"]} == {"0.0.0.0/0", "::/0"}
    ls = sb.run("ls").stdout
    assert f"{SUBNET},{SUBNET6}" in ls, ls
    # the default network stays IPv4 only
    assert json.loads(sb.run("inspect", "vessel").stdout)["subnets"][0].startswith("10.")
    assert len(json.loads(sb.run("inspect", "vessel").stdout)["subnets"]) == 1


def test_ipv6_picks_a_free_ula_64(sb):
    sb.run("create", "n1", "--ipv6")
    sb.run("create", "n2", "--ipv6", "--subnet", SUBNET)
    s1 = json.loads(sb.run("inspect", "n1").stdout)["subnets"]
    s2 = json.loads(sb.run("inspect", "n2").stdout)["subnets"]
    assert len(s1) == 2 and s1[0].startswith("10.") and s1[0].endswith("/16")
    assert s2[0] == SUBNET
    for s in (s1[1], s2[1]):
        assert s.startswith("fd") and s.endswith("::/64"), s
    assert s1[1] != s2[1]


@pytest.mark.parametrize("subnets", [
    ["fd42::1/64"],                       # host bits set
    ["fd42::/40"],                        # a prefix shorter than /48
    ["fd42::/124"],                       # too few addresses
    ["fd42::"],                           # not a CIDR
    ["fd42::/x"],
    ["zz::/64"],
    [SUBNET6, "fd43::/64"],               # two of one family
    [SUBNET, "10.1.0.0/16"],
])
def test_bad_subnet_values_are_one_line_each(sb, subnets):
    args = [a for s in subnets for a in ("--subnet", s)]
    p = sb.run("create", "n1", *args, check=False)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and subnets[-1] in lines[0], p.stderr
    assert not os.path.exists(os.path.join(sb.store, "networks", "n1.conflist"))


def test_a_subnet_overlapping_another_network_is_refused(sb):
    sb.run("create", "n1", "--subnet", SUBNET, "--subnet", SUBNET6)
    for sub in ("fd42:213:7::/48", "10.213.0.0/16"):
        p = sb.run("create", "n2", "--subnet", sub, check=False)
        lines = p.stderr.strip().splitlines()
        assert p.returncode != 0 and len(lines) == 1, p.stderr
        assert sub in lines[0] and "n1" in lines[0], p.stderr
    # the other family is free
    sb.run("create", "n2", "--subnet", "fd42:214::/64")


def test_dual_stack_peers_ports_and_rm(sb):
    sb.run("create", "n1", "--subnet", SUBNET, "--subnet", SUBNET6)
    a = attach(sb, "c1")
    b = attach(sb, "c2", "-p", "18080:80/tcp")
    assert a["ip"].startswith("10.213.7.") and a["gateway"] == GATEWAY
    assert a["ip6"].startswith("fd42:213:7::") and a["ip6"].endswith("/64")
    assert a["gateway6"] == GATEWAY6 and a["ip6"] != b["ip6"]
    # a global address from the subnet, usable at once: a fresh netns has IPv6 on
    # (disable_ipv6 0), and the bridge plugin turns DAD off on the container's side (its
    # hairpin mode would echo the solicitations back) and waits for the addresses to
    # settle, so no tuning sysctl or wait of vessel's is needed
    addrs = sb.in_ctr("c1", "ip -6 -o addr show dev eth0 scope global").stdout
    assert a["ip6"] in addrs and "tentative" not in addrs, addrs
    srv = serve(sb, "c2", 80)
    try:
        # the peer over IPv6, and over IPv4
        assert fetch(sb, "c1", b["ip6"].split("/")[0], 80)[0] == 5
        assert fetch(sb, "c1", b["ip"].split("/")[0], 80)[0] == 5
        # the published port from the host side over both families (portmap's ip6tables)
        assert fetch(sb, None, GATEWAY, 18080)[0] == 5
        assert fetch(sb, None, GATEWAY6, 18080)[0] == 5
    finally:
        srv.kill()
    assert b["ip6"].split("/")[0] in sb.sh("ip6tables-save").stdout
    lease_dir = os.path.join(sb.store, "network-ipam", "n1")
    assert os.path.exists(os.path.join(lease_dir, a["ip6"].split("/")[0]))
    sb.run("detach", "n1", "c1")
    sb.run("detach", "n1", "c2")
    assert b["ip6"].split("/")[0] not in sb.sh("ip6tables-save").stdout
    # rm takes the conflist and every lease file with it
    assert os.path.exists(lease_dir)
    sb.run("rm", "n1")
    assert not os.path.exists(lease_dir)
    assert not os.path.exists(os.path.join(sb.store, "networks", "n1.conflist"))
