"""Live migration's refusals that need no VM (docs/migration.md): a receiver fed a bad or
truncated stream exits with an error that says what was wrong, and tells the source why;
PUT /migrate refuses bad bodies naming the field and an instance that runs no VM; GET
/migrate says none before any; `vm migrate-send` and `vm migrate-receive` usage errors.
(The migrations themselves boot Linux: test_vm_migrate.py, kvm.)"""
import os
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from test_vm_api import Api, spec  # noqa: F401 (fixture)

MAGIC = 0x47494d56


def header(typ, length, magic=MAGIC, flags=0):
    return struct.pack("<IHHQ", magic, typ, flags, length)


def hello(version=1, ncpus=1, ram=128 << 20, ncpuid=1, config=b"{}"):
    return (struct.pack("<IIQII", version, ncpus, ram, ncpuid, len(config))
            + b"\0" * 40 * ncpuid + config)


def feed(vessel, data, close_early=False):
    """A receiver on a fresh Unix socket; the test is its source: sends data, reads what
    the receiver answers until it hangs up. Returns (exit status, stderr, answer)."""
    d = tempfile.mkdtemp(prefix="vmr")
    path = os.path.join(d, "m.sock")
    p = subprocess.Popen([vessel, "vm", "migrate-receive", "--listen", f"unix:{path}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        assert p.poll() is None, p.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(data)
    if close_early:
        s.shutdown(socket.SHUT_WR)
    s.settimeout(30)
    answer = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            answer += b
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    rc = p.wait(timeout=30)
    assert not os.path.exists(path), "the receiver left its socket file"
    os.rmdir(d)
    return rc, p.stderr.read(), answer


def error_text(answer):
    assert len(answer) >= 16, answer
    magic, typ, flags, n = struct.unpack("<IHHQ", answer[:16])
    assert (magic, typ, flags) == (MAGIC, 3, 0), answer[:16]
    assert len(answer) == 16 + n
    return answer[16:].decode()


@pytest.mark.parametrize("data,close,says", [
    (b"GET / HTTP/1.1\r\n\r\n", False, "not a vessel migration stream"),
    (header(9, 0), False, "unknown type 9"),
    (header(1, 10, flags=1), False, "reserved flags"),
    (header(1, 64 << 20), False, "HELLO message of 67108864 bytes"),
    (header(4, 16 + 4096), False, "began with MEMORY, not HELLO"),
    (header(1, len(hello(version=2))) + hello(version=2), False, "protocol version 2"),
    (header(1, len(hello(ncpuid=0))) + hello(ncpuid=0), False, "0 CPUID entries"),
    (header(1, 100) + b"x" * 10, True, "hung up (truncated stream)"),
    (b"VMIG", True, "hung up (truncated stream)"),
])
def test_a_bad_stream_is_refused_naming_why(vessel, data, close, says):
    rc, err, answer = feed(vessel, data, close)
    assert rc == 1 and says in err, err
    assert "refused the migration" in err or "migration from unix:" in err, err
    assert says in error_text(answer), answer


def test_migrate_api_refusals(vessel, spec):
    a = Api(vessel, spec, ["--id", "mig"])
    try:
        assert a.call("GET", "/migrate") == (200, {"state": "none"})
        for body, names in [
            ({}, "destination_url"),
            ({"destination_url": "ftp://x"}, "destination_url"),
            ({"destination_url": "unix:/x", "downtime_ms": 0}, "downtime_ms"),
            ({"destination_url": "unix:/x", "timeout_s": -1}, "timeout_s"),
            ({"destination_url": "unix:/x", "on_timeout": "wait"}, "on_timeout"),
            ({"destination_url": "unix:/x", "extra": 1}, "extra"),
            ({"destination_url": "unix:/x"}, "must be running; it is not started"),
        ]:
            status, parsed = a.call("PUT", "/migrate", body)
            assert status == 400 and names in parsed["fault_message"], (body, parsed)
    finally:
        a.stop()


@pytest.mark.parametrize("args,says", [
    (["migrate-send"], "--api-sock and --to are required"),
    (["migrate-send", "--api-sock", "/nonexistent.sock", "--to", "unix:/x"],
     "connect to the API at `/nonexistent.sock`"),
    (["migrate-send", "--timeout-s", "x"], "--timeout-s `x`"),
    (["migrate-receive"], "--listen is required"),
    (["migrate-receive", "--listen", "tcp:localhost:1"], "not a numeric IPv4 address"),
    (["migrate-receive", "--listen", "unix:/x", "--bogus", "1"], "not an option"),
])
def test_usage_errors(vessel, args, says):
    r = subprocess.run([vessel, "vm", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and says in r.stderr, r.stderr
