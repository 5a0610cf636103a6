"""virtio-net over a tap: the tiny virtio-net guest (tests/guests/virtio-net.c) talks to the
host's network stack through a tap inside a network namespace the test makes, so no frame
ever leaves it. The host end is the kernel itself (ARP, ICMP echo) and a UDP echo server the
test runs in the namespace; the guest prints what came back."""
import json
import re
import subprocess
import time
import uuid

import shutil

import pytest

from conftest import run
from test_vm_guests import expect, guest, value

# every test here boots a VM: tests/kvm.sh runs them where there is hardware KVM
pytestmark = pytest.mark.kvm

HOST_IP, GUEST_IP = "10.99.0.1", "10.99.0.2"
GUEST_MAC = "52:54:00:12:34:56"
UDP_PORT = 7777

# Answers each datagram `SIZE n` with n bytes (i & 0xff); stops after `count` or the timeout.
UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(float(sys.argv[4]))
print("LISTENING", flush=True)
for _ in range(int(sys.argv[3])):
    data, peer = s.recvfrom(65536)
    print("GOT", len(data), data[:32].decode(errors="replace"), peer[0], flush=True)
    n = int(data.split()[1]) if data.startswith(b"SIZE ") else len(data)
    s.sendto(bytes(i & 0xff for i in range(n)), peer)
"""


def ip(*args, check=True):
    r = run(["ip", *args], timeout=20)
    if check:
        assert r.returncode == 0, f"ip {' '.join(args)}: {r.stderr}"
    return r


@pytest.fixture
def netns():
    name = "vsnet-" + uuid.uuid4().hex[:8]
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    yield name
    ip("netns", "del", name, check=False)


def make_tap(ns, name="vtap0", mtu=1500):
    ip("-n", ns, "tuntap", "add", "dev", name, "mode", "tap")
    ip("-n", ns, "addr", "add", f"{HOST_IP}/24", "dev", name)
    ip("-n", ns, "link", "set", name, "mtu", str(mtu), "up")
    return name


def link(ns, name):
    r = ip("-n", ns, "-j", "link", "show", name, check=False)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def vm_in(ns, vessel, *args, cmdline="", timeout=60):
    cmd = ["ip", "netns", "exec", ns, vessel, "vm", "run", "--kernel", guest("virtio-net"),
           "--cmdline", f"vnet.host={HOST_IP} vnet.guest={GUEST_IP} {cmdline}".strip(), *args]
    r = run(cmd, timeout=timeout, stdin=subprocess.DEVNULL)
    lines = [line.rstrip("\r") for line in r.stdout.splitlines()]
    return r.returncode, lines, r.stderr


def udp_echo(ns, count, timeout=40):
    p = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", UDP_ECHO,
                          HOST_IP, str(UDP_PORT), str(count), str(timeout)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "LISTENING", p.stderr.read()
    return p


def finish(p):
    try:
        out, err = p.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return out, err


# ---------------------------------------------------------------- the round trip

def test_guest_talks_to_the_host_stack_through_the_tap(vessel, netns):
    tap = make_tap(netns, mtu=9000)
    server = udp_echo(netns, 2)
    rc, lines, err = vm_in(netns, vessel, "--net", f"tap={tap},mac={GUEST_MAC}",
                           cmdline=f"vnet.udp={UDP_PORT} vnet.big=6000")
    out, serr = finish(server)
    expect(rc, lines, err)
    assert value(lines, "MAC") == GUEST_MAC
    # the host kernel answered the ARP request with the tap's own address
    assert value(lines, "ARP REPLY") == f"{HOST_IP} is at {link(netns, tap)['address']}"
    assert value(lines, "PING REPLY") == f"from {HOST_IP} seq 1 bytes 56 payload ok"
    # a UDP datagram the guest left for the device to checksum (VIRTIO_NET_F_CSUM): the host
    # stack only takes it if the checksum offload went through the tap as the header said
    assert f"GOT 8 SIZE 100 {GUEST_IP}" in out, out + serr
    assert value(lines, "UDP REPLY") == "100 bytes in 1 buffers, pattern ok"
    # 6000 bytes in one 6042-byte frame (the tap's MTU is 9000) over 2 KiB buffers: the
    # device merges receive buffers and says how many in num_buffers
    assert f"GOT 9 SIZE 6000 {GUEST_IP}" in out, out + serr
    assert value(lines, "UDP BIG REPLY") == "6000 bytes in 3 buffers, pattern ok"
    # the guest took GUEST_CSUM, so the tap may hand over the host's partial checksums
    assert value(lines, "UDP REPLY CSUM") == "partial"
    assert value(lines, "UDP BIG REPLY CSUM") == "partial"
    assert "Sanitizer" not in err and "runtime error" not in err, err


def test_without_guest_csum_the_guest_gets_complete_checksums(vessel, netns):
    """No GUEST_CSUM: the tap gets no offloads, the host checksums every frame itself and
    the header's flags reach the guest clear."""
    tap = make_tap(netns, mtu=9000)
    server = udp_echo(netns, 2)
    rc, lines, err = vm_in(netns, vessel, "--net", f"tap={tap},mac={GUEST_MAC}",
                           cmdline=f"vnet.udp={UDP_PORT} vnet.big=6000 vnet.no_guest_csum=1")
    out, serr = finish(server)
    expect(rc, lines, err)
    assert value(lines, "UDP REPLY") == "100 bytes in 1 buffers, pattern ok"
    assert value(lines, "UDP REPLY CSUM") == "complete, valid"
    assert value(lines, "UDP BIG REPLY CSUM") == "complete, valid"


def test_features_the_guest_negotiated(vessel, netns):
    tap = make_tap(netns)
    rc, lines, err = vm_in(netns, vessel, "--net", f"tap={tap}", cmdline="vnet.only=features")
    expect(rc, lines, err)
    feats = value(lines, "FEATURES").split()
    for f in ("CSUM", "GUEST_CSUM", "MAC", "GUEST_TSO4", "GUEST_TSO6", "HOST_TSO4",
              "HOST_TSO6", "MRG_RXBUF", "STATUS", "VERSION_1"):
        assert f in feats, feats
    assert value(lines, "LINK") == "up"
    # no mac= given: a random locally administered unicast address
    mac = value(lines, "MAC")
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac), mac
    assert int(mac[:2], 16) & 3 == 2, mac


def test_missing_tap_is_created_up_and_goes_with_vessel(vessel, netns):
    """No tap yet: vessel creates it and brings it up; the test gives it an address while
    the guest keeps asking, and the guest's ARP gets its answer. It is gone afterwards."""
    name = "vnew0"
    assert link(netns, name) is None
    cmd = ["ip", "netns", "exec", netns, vessel, "vm", "run", "--kernel", guest("virtio-net"),
           "--net", f"tap={name},mac={GUEST_MAC}",
           "--cmdline", f"vnet.host={HOST_IP} vnet.guest={GUEST_IP} vnet.only=arp"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while (info := link(netns, name)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert info is not None, "vessel did not create the tap"
        assert "UP" in info["flags"], info
        ip("-n", netns, "addr", "add", f"{HOST_IP}/24", "dev", name)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    lines = [line.rstrip("\r") for line in out.splitlines()]
    expect(p.returncode, lines, err)
    assert value(lines, "ARP REPLY") == f"{HOST_IP} is at {info['address']}"
    assert link(netns, name) is None, "the tap vessel created outlived it"


def test_existing_tap_keeps_its_configuration(vessel, netns):
    tap = make_tap(netns)
    rc, lines, err = vm_in(netns, vessel, "--net", f"tap={tap},mac={GUEST_MAC}",
                           cmdline="vnet.only=arp")
    expect(rc, lines, err)
    info = link(netns, tap)
    assert info is not None and "UP" in info["flags"]
    addrs = ip("-n", netns, "-j", "addr", "show", tap).stdout
    assert HOST_IP in addrs


def test_two_interfaces_each_with_its_tap(vessel, netns):
    """--net is repeatable: the guest drives the second device, which must be the second
    tap (its own host address answers) with its own MAC."""
    make_tap(netns, "vtapa")
    ip("-n", netns, "tuntap", "add", "dev", "vtapb", "mode", "tap")
    ip("-n", netns, "addr", "add", "10.98.0.1/24", "dev", "vtapb")
    ip("-n", netns, "link", "set", "vtapb", "up")
    cmd = ["ip", "netns", "exec", netns, vessel, "vm", "run", "--kernel", guest("virtio-net"),
           "--net", "tap=vtapa,mac=52:54:00:00:00:0a", "--net", "tap=vtapb,mac=52:54:00:00:00:0b",
           "--cmdline", "vnet.dev=1 vnet.host=10.98.0.1 vnet.guest=10.98.0.2 vnet.only=arp"]
    r = run(cmd, timeout=60, stdin=subprocess.DEVNULL)
    lines = [line.rstrip("\r") for line in r.stdout.splitlines()]
    expect(r.returncode, lines, r.stderr)
    assert value(lines, "MAC") == "52:54:00:00:00:0b"
    assert value(lines, "ARP REPLY") == f"10.98.0.1 is at {link(netns, 'vtapb')['address']}"


def test_same_guest_under_qemu_microvm(netns):
    """The guest follows virtio 1.x, not vessel: QEMU's virtio-net-device (vhost off) on a
    tap gives the same exchange (bench/net.sh compares the two with this guest)."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.fail("qemu-system-x86_64 missing (apt-get install qemu-system-x86)")
    tap = make_tap(netns, mtu=9000)
    server = udp_echo(netns, 2)
    cmd = ["ip", "netns", "exec", netns, qemu, "-M", "microvm,acpi=off", "-enable-kvm", "-cpu",
           "host", "-m", "128", "-display", "none", "-nodefaults", "-no-reboot", "-serial",
           "stdio", "-global", "virtio-mmio.force-legacy=false", "-device", "isa-debug-exit",
           "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no,vhost=off",
           "-device", f"virtio-net-device,netdev=n0,mac={GUEST_MAC}", "-kernel",
           guest("virtio-net"), "-append",
           f"vnet.host={HOST_IP} vnet.guest={GUEST_IP} vnet.udp={UDP_PORT} vnet.big=6000"]
    r = run(cmd, timeout=60, stdin=subprocess.DEVNULL)
    out, serr = finish(server)
    lines = [line.rstrip("\r") for line in r.stdout.splitlines()]
    # isa-debug-exit: (0 << 1) | 1
    expect(r.returncode, lines, r.stderr, status=1)
    assert value(lines, "MAC") == GUEST_MAC
    assert value(lines, "ARP REPLY") == f"{HOST_IP} is at {link(netns, tap)['address']}"
    assert value(lines, "PING REPLY") == f"from {HOST_IP} seq 1 bytes 56 payload ok"
    assert value(lines, "UDP REPLY") == "100 bytes in 1 buffers, pattern ok"
    assert value(lines, "UDP BIG REPLY").startswith("6000 bytes in "), lines


# ---------------------------------------------------------------- rate limit

def test_rate_limited_transmit_waits_not_drops(vessel, netns):
    """bw=64K: 60 frames of 1514 bytes (about 90 KB) need over 0.4 s past the first full
    bucket; every frame still arrives (counted on the tap)."""
    tap = make_tap(netns)
    rx0 = int(open_counter(netns, tap, "rx_packets"))
    t0 = time.monotonic()
    rc, lines, err = vm_in(netns, vessel, "--net", f"tap={tap},mac={GUEST_MAC},bw=64K",
                           cmdline="vnet.only=bench vnet.frames=60 vnet.size=1514")
    elapsed = time.monotonic() - t0
    expect(rc, lines, err)
    assert value(lines, "TX FRAMES") == "60"
    frames = int(open_counter(netns, tap, "rx_packets")) - rx0
    assert frames >= 60, frames
    # 60 * 1500 payload bytes = 90000; the bucket (65536) starts full
    assert elapsed >= (60 * 1500 - 65536) / 65536 * 0.8, elapsed


def test_ops_limit_paces_frames(vessel, netns):
    tap = make_tap(netns)
    t0 = time.monotonic()
    rc, lines, err = vm_in(netns, vessel, "--net", f"tap={tap},ops=20",
                           cmdline="vnet.only=bench vnet.frames=50 vnet.size=100")
    elapsed = time.monotonic() - t0
    expect(rc, lines, err)
    assert value(lines, "TX FRAMES") == "50"
    # 20 at once (the full bucket), then 30 at 20/s
    assert elapsed >= 1.2, elapsed


UDP_BLAST = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(b"x" * 1000, (sys.argv[1], 9))
"""


def test_rate_limited_receive_waits_not_drops(vessel, netns):
    """ops=10 on the way in: the host sends 40 datagrams at once (they wait in the tap's
    queue); 10 pass with the full bucket, 30 more at 10/s take about 3 s."""
    tap = make_tap(netns)
    ip("-n", netns, "neigh", "add", GUEST_IP, "lladdr", GUEST_MAC, "dev", tap)
    cmd = ["ip", "netns", "exec", netns, vessel, "vm", "run", "--kernel", guest("virtio-net"),
           "--net", f"tap={tap},mac={GUEST_MAC},ops=10",
           "--cmdline", f"vnet.host={HOST_IP} vnet.guest={GUEST_IP} vnet.only=rxcount "
           "vnet.frames=40"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        head = []
        while "RX READY" not in (line := p.stdout.readline()):
            assert line, "".join(head) + p.stderr.read()
            head.append(line)
        t0 = time.monotonic()
        r = run(["ip", "netns", "exec", netns, "/usr/bin/python3", "-c", UDP_BLAST, GUEST_IP,
                 "40"], timeout=20)
        assert r.returncode == 0, r.stderr
        out, err = p.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    lines = [line.rstrip("\r") for line in out.splitlines()]
    expect(p.returncode, lines, err)
    assert value(lines, "RX FRAMES") == "40"
    assert elapsed >= 3 * 0.8, elapsed


def open_counter(ns, dev, name):
    r = run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/statistics/{name}"],
            timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


# ---------------------------------------------------------------- a hostile driver

def test_bad_transmit_chain_needs_reset_and_the_device_recovers(vessel, netns):
    tap = make_tap(netns)
    rc, lines, err = vm_in(netns, vessel, "--net", f"tap={tap},mac={GUEST_MAC}",
                           cmdline="vnet.only=badtx")
    expect(rc, lines, err)
    # a header the tap refuses (TSO with gso_size 0) is a dropped frame, logged once
    assert value(lines, "REFUSED FRAME") == "the device goes on"
    dropped = [line for line in err.splitlines() if "write to tap" in line]
    assert len(dropped) == 1 and "dropped" in dropped[0], err
    assert value(lines, "BAD TX STATUS") == "needs reset"
    assert value(lines, "ARP REPLY").startswith(f"{HOST_IP} is at ")
    why = [line for line in err.splitlines() if "virtio-net" in line and "reset" in line]
    assert len(why) == 1, err
    assert "device-writable" in why[0], why


def test_read_only_receive_buffer_needs_reset_and_the_device_recovers(vessel, netns):
    tap = make_tap(netns)
    rc, lines, err = vm_in(netns, vessel, "--net", f"tap={tap},mac={GUEST_MAC}",
                           cmdline="vnet.only=badrx")
    expect(rc, lines, err)
    assert value(lines, "BAD RX STATUS") == "needs reset"
    assert value(lines, "ARP REPLY").startswith(f"{HOST_IP} is at ")
    why = [line for line in err.splitlines() if "virtio-net" in line and "reset" in line]
    assert len(why) == 1, err
    assert "receive buffer has no device-writable part" in why[0], why


# ---------------------------------------------------------------- bad input

def one_error_line(r, *needles):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("vessel: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "Sanitizer" not in r.stderr


@pytest.mark.parametrize("spec,needles", [
    ("mac=52:54:00:12:34:56", ["--net mac=52:54:00:12:34:56", "tap: missing"]),
    ("tap=", ["tap: needs an interface name"]),
    ("tap=waytoolongname0123", ["--net tap=waytoolongname0123", "longer than 15"]),
    ("tap=t0,mac=52:54:00:zz:00:01", ["mac: `52:54:00:zz:00:01` is not a MAC address"]),
    ("tap=t0,mac=01:00:5e:00:00:01", ["multicast"]),
    ("tap=t0,bw=fast", ["--net tap=t0,bw=fast", "bw: not a rate"]),
    ("tap=t0,ops=0", ["ops: must be above 0"]),
    ("tap=t0,colour=blue", ["colour: unknown option"]),
    ("tap=lo", ["tap `lo`: exists and is not a tap device"]),
])
def test_bad_net_spec_is_one_line(vessel, netns, spec, needles):
    r = run(["ip", "netns", "exec", netns, vessel, "vm", "run", "--kernel", guest("virtio-net"),
             "--net", spec], timeout=30, stdin=subprocess.DEVNULL)
    one_error_line(r, *needles)


def test_same_tap_twice_is_refused(vessel, netns):
    tap = make_tap(netns)
    r = run(["ip", "netns", "exec", netns, vessel, "vm", "run", "--kernel", guest("virtio-net"),
             "--net", f"tap={tap}", "--net", f"tap={tap}"], timeout=30,
            stdin=subprocess.DEVNULL)
    one_error_line(r, f"tap `{tap}`: in use by another process")
