"""`vessel vm api`: Firecracker's API on a Unix socket, driven by curl as Firecracker's own
docs drive it. Every answer is checked against Firecracker's OpenAPI description
(firecracker-api.yaml): a 200's body against the operation's schema, a 400's against Error.

The calls that need no guest (the configuration, every wrong call and malformed request,
the HTTP limits) run anywhere. Those that boot the default guest (InstanceStart, calls that
are wrong once it runs, PATCH /vm Paused/Resumed watched on the guest's console) are marked
kvm and run where there is a hardware-assisted /dev/kvm, or inside tests/kvmhost/run.
"""
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import yaml

from conftest import ROOT

# Firecracker's own OpenAPI description, an unchanged copy kept with the tests (as
# cri-api.proto is) so that a fresh clone needs nothing from outside the repository
API_YAML = pathlib.Path(os.environ.get("VESSEL_FIRECRACKER_API_YAML",
                                       ROOT / "tests" / "integration" / "clients" /
                                       "firecracker-api.yaml"))


# ------------------------------------------------------------------ Firecracker's schemas

@pytest.fixture(scope="session")
def spec():
    if not API_YAML.is_file():
        pytest.fail(f"Firecracker's OpenAPI description is missing: {API_YAML} "
                    "(set VESSEL_FIRECRACKER_API_YAML)")
    with open(API_YAML) as f:
        return yaml.safe_load(f)


def resolve(spec, schema):
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["definitions"][name]
    return schema


def check_schema(spec, schema, value, where="body"):
    """A small validator for what Firecracker's schemas use: type, required, properties,
    enum, items, minimum/maximum. additionalProperties is not set there, so extra members
    are allowed (as a Firecracker client allows them)."""
    schema = resolve(spec, schema)
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an integer"
    elif t in types:
        assert isinstance(value, types[t]), f"{where}: {value!r} is not a {t}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "minimum" in schema:
        assert value >= schema["minimum"], f"{where}: {value} < {schema['minimum']}"
    if "maximum" in schema:
        assert value <= schema["maximum"], f"{where}: {value} > {schema['maximum']}"
    if isinstance(value, dict):
        for r in schema.get("required", []):
            assert r in value, f"{where}: required member {r!r} missing in {value}"
        for k, v in value.items():
            if k in schema.get("properties", {}):
                check_schema(spec, schema["properties"][k], v, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            check_schema(spec, schema["items"], v, f"{where}[{i}]")


def check_response(spec, method, path_pattern, status, body):
    """The status is one the operation declares, and the body fits its schema."""
    op = spec["paths"][path_pattern][method.lower()]
    declared = op["responses"]
    assert status in declared or (status == 400 and "default" in declared), \
        f"{method} {path_pattern}: status {status} not declared ({list(declared)})"
    r = declared.get(status, declared.get("default"))
    if status == 204:
        assert body is None, f"{method} {path_pattern}: a 204 with a body: {body!r}"
    if "schema" in r:
        check_schema(spec, r["schema"], body, f"{method} {path_pattern} {status}")


# ------------------------------------------------------------------ the VMM and its client

class Api:
    def __init__(self, vessel, spec, args=(), stdout=subprocess.DEVNULL, env=None):
        self.dir = tempfile.mkdtemp(prefix="vapi")  # short: sun_path is 108 bytes
        self.sock = os.path.join(self.dir, "api.sock")
        self.spec = spec
        self.proc = subprocess.Popen([vessel, "vm", "api", "--api-sock", self.sock, *args],
                                     stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            assert self.proc.poll() is None, f"vessel vm api exited: {self.proc.stderr.read()}"
            assert time.monotonic() < deadline, "no API socket after 10 s"
            time.sleep(0.02)

    def call(self, method, path, body=None, pattern=None, raw=None):
        """curl over the socket; returns (status, parsed body or None). With pattern (the
        OpenAPI path), the answer is checked against Firecracker's description."""
        cmd = ["curl", "-sS", "--unix-socket", self.sock, "-X", method,
               "-w", "\n%{http_code}", f"http://localhost{path}"]
        if body is not None or raw is not None:
            cmd += ["-H", "Content-Type: application/json",
                    "--data-binary", raw if raw is not None else json.dumps(body)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0 and self.proc.poll() is not None:
            # the VMM is gone: what it said before it went is the story, not curl's
            raise AssertionError(f"curl failed: {r.stderr}; vessel vm api exited "
                                 f"{self.proc.returncode}: {self.proc.stderr.read()[-4000:]}")
        assert r.returncode == 0, f"curl failed: {r.stderr}"
        text, status = r.stdout.rsplit("\n", 1)
        status = int(status)
        parsed = json.loads(text) if text else None
        if pattern:
            check_response(self.spec, method, pattern, status, parsed)
        if status == 400:
            check_schema(self.spec, {"$ref": "#/definitions/Error"}, parsed)
            assert parsed["fault_message"], parsed
        return status, parsed

    def ok(self, method, path, body=None, pattern=None):
        status, parsed = self.call(method, path, body, pattern or path)
        assert status in (200, 204), f"{method} {path}: {status} {parsed}"
        return parsed

    def fault(self, method, path, body=None, pattern=None, raw=None):
        status, parsed = self.call(method, path, body, pattern, raw)
        assert status == 400, f"{method} {path}: {status} {parsed}, expected 400"
        return parsed["fault_message"]

    def raw(self, data, timeout=5):
        """Bytes straight on the socket; returns all the server answered before closing
        (or the timeout)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        s.close()
        return out

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode, err


@pytest.fixture
def api(vessel, spec):
    a = Api(vessel, spec, ["--id", "test_vm_1"])
    yield a
    a.stop()


@pytest.fixture(scope="session")
def kernel(tmp_path_factory):
    """A readable file for kernel_image_path: calls before InstanceStart read no kernel."""
    p = tmp_path_factory.mktemp("k") / "vmlinux"
    p.write_bytes(b"not a kernel" * 100)
    return str(p)


# ------------------------------------------------------------------ without a guest

def test_instance_info_before_start(api):
    info = api.ok("GET", "/")
    assert info["state"] == "Not started"
    assert info["id"] == "test_vm_1"
    assert info["app_name"] == "vessel" and info["vmm_version"]


def test_version(api):
    v = api.ok("GET", "/version")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", v["firecracker_version"]), v


def test_machine_config_defaults_then_put_and_patch(api):
    assert api.ok("GET", "/machine-config") == {
        "vcpu_count": 1, "mem_size_mib": 128, "smt": False, "track_dirty_pages": False,
        "huge_pages": "None"}
    api.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    assert api.ok("GET", "/machine-config")["vcpu_count"] == 2
    api.ok("PATCH", "/machine-config", {"mem_size_mib": 512})
    mc = api.ok("GET", "/machine-config")
    assert (mc["vcpu_count"], mc["mem_size_mib"]) == (2, 512)
    # PUT sets the whole object: what it leaves out takes the default again
    api.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "huge_pages": "2M"})
    assert api.ok("GET", "/machine-config")["huge_pages"] == "2M"


def test_vm_config_reflects_what_was_put(api, kernel, tmp_path):
    disk = tmp_path / "d.img"
    disk.write_bytes(b"\0" * 4096)
    boot = {"kernel_image_path": kernel, "boot_args": "console=ttyS0 quiet"}
    root = {"drive_id": "rootfs", "path_on_host": str(disk), "is_root_device": True,
            "is_read_only": True}
    data = {"drive_id": "data_1", "path_on_host": str(disk), "is_root_device": False,
            "rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 100}}}
    net = {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "52:54:00:12:34:56"}
    api.ok("PUT", "/boot-source", boot)
    api.ok("PUT", "/drives/data_1", data, "/drives/{drive_id}")
    api.ok("PUT", "/drives/rootfs", root, "/drives/{drive_id}")
    api.ok("PUT", "/network-interfaces/eth0", net, "/network-interfaces/{iface_id}")
    entropy = {"rate_limiter": {"bandwidth": {"size": 4096, "refill_time": 1000},
                                "ops": {"size": 100, "one_time_burst": 10, "refill_time": 1000}}}
    api.ok("PUT", "/entropy", entropy)
    api.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    # a second PUT of one id replaces it, in its place
    data["is_read_only"] = True
    api.ok("PUT", "/drives/data_1", data, "/drives/{drive_id}")
    cfg = api.ok("GET", "/vm/config")
    assert cfg["boot-source"] == boot
    assert cfg["drives"] == [data, root]
    assert cfg["network-interfaces"] == [net]
    assert cfg["entropy"] == entropy
    assert cfg["machine-config"]["vcpu_count"] == 2
    assert cfg["machine-config"]["mem_size_mib"] == 256


# (method, path, body, OpenAPI path, what the fault_message must name)
WRONG = [
    ("PUT", "/boot-source", {"boot_args": "x"}, "/boot-source", "kernel_image_path"),
    ("PUT", "/boot-source", {"kernel_image_path": "/nonexistent/vmlinux"}, "/boot-source",
     "kernel_image_path"),
    ("PUT", "/boot-source", {"kernel_image_path": 7}, "/boot-source", "kernel_image_path"),
    ("PUT", "/boot-source", {"kernel_image_path": "/k", "initrd": "x"}, "/boot-source",
     "initrd"),
    ("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 128}, "/machine-config",
     "vcpu_count"),
    ("PUT", "/machine-config", {"vcpu_count": 1}, "/machine-config", "mem_size_mib"),
    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": "big"}, "/machine-config",
     "mem_size_mib"),
    ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128, "smt": True},
     "/machine-config", "smt"),
    ("PATCH", "/machine-config", {"huge_pages": "1G"}, "/machine-config", "huge_pages"),
    ("PATCH", "/machine-config", {}, "/machine-config", "no member"),
    ("PUT", "/drives/rootfs", {"drive_id": "other", "path_on_host": "/x",
                               "is_root_device": True}, "/drives/{drive_id}", "drive_id"),
    ("PUT", "/drives/d1", {"drive_id": "d1", "is_root_device": False},
     "/drives/{drive_id}", "path_on_host"),
    ("PUT", "/drives/d1", {"drive_id": "d1", "path_on_host": "/x"},
     "/drives/{drive_id}", "is_root_device"),
    ("PUT", "/drives/d1", {"drive_id": "d1", "path_on_host": "/x", "is_root_device": False,
                           "cache_type": "Sometimes"}, "/drives/{drive_id}", "cache_type"),
    ("PUT", "/drives/d1", {"drive_id": "d1", "path_on_host": "/x", "is_root_device": False,
                           "rate_limiter": {"bandwidth": {"size": 100}}},
     "/drives/{drive_id}", "refill_time"),
    ("PATCH", "/drives/d1", {"drive_id": "d1", "path_on_host": "/y"}, "/drives/{drive_id}",
     "not started"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0"},
     "/network-interfaces/{iface_id}", "host_dev_name"),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                         "guest_mac": "zz"},
     "/network-interfaces/{iface_id}", "guest_mac"),
    ("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"},
     "/network-interfaces/{iface_id}", "not started"),
    ("PUT", "/entropy", {"rate_limiter": {"ops": {"size": 1}}}, "/entropy",
     "rate_limiter.ops.refill_time"),
    ("PUT", "/entropy", {"rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1}},
                         "size": 3}, "/entropy", "size"),
    ("PUT", "/actions", {"action_type": "Reboot"}, "/actions", "action_type"),
    ("PUT", "/actions", {}, "/actions", "action_type"),
    ("PUT", "/actions", {"action_type": "InstanceStart"}, "/actions", "boot"),
    ("PUT", "/actions", {"action_type": "SendCtrlAltDel"}, "/actions", "not started"),
    ("PUT", "/actions", {"action_type": "FlushMetrics"}, "/actions", "metrics"),
    ("PATCH", "/vm", {"state": "Paused"}, "/vm", "not started"),
    ("PATCH", "/vm", {"state": "Frozen"}, "/vm", "state"),
    ("PATCH", "/vm", {}, "/vm", "state"),
    ("PUT", "/logger", {"log_path": "/tmp/x", "level": "Loud"}, "/logger", "level"),
    ("PUT", "/logger", {"level": "Info"}, "/logger", "log_path"),
    ("PUT", "/metrics", {}, "/metrics", "metrics_path"),
    ("PUT", "/metrics", {"metrics_path": "/nonexistent/dir/m"}, "/metrics", "metrics_path"),
    ("PUT", "/snapshot/create", {"snapshot_path": "s", "mem_file_path": "m"},
     "/snapshot/create", "paused"),
    ("PUT", "/snapshot/create", {"snapshot_path": "s", "mem_file_path": "m",
                                 "snapshot_type": "Half"}, "/snapshot/create", "snapshot_type"),
    ("PUT", "/snapshot/load", {"snapshot_path": "s", "mem_backend": {}},
     "/snapshot/load", "backend_path"),
    ("PUT", "/snapshot/load", {"snapshot_path": "s"}, "/snapshot/load", "mem_backend"),
    ("PUT", "/snapshot/load", {"snapshot_path": "/nonexistent/s", "mem_file_path": "m"},
     "/snapshot/load", "/nonexistent/s"),
]


@pytest.mark.parametrize("method,path,body,pattern,names", WRONG,
                         ids=[f"{m} {p} {n}" for m, p, _, _, n in WRONG])
def test_wrong_call_is_400_naming_the_field(api, method, path, body, pattern, names):
    msg = api.fault(method, path, body, pattern)
    assert names.lower() in msg.lower(), msg
    # and nothing was changed by it
    assert api.ok("GET", "/")["state"] == "Not started"


def test_a_refused_call_changes_nothing(api, kernel):
    api.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
    api.fault("PUT", "/machine-config", {"vcpu_count": 3, "mem_size_mib": -1})
    api.fault("PATCH", "/machine-config", {"vcpu_count": "four"})
    assert api.ok("GET", "/machine-config")["vcpu_count"] == 2
    api.ok("PUT", "/drives/root", {"drive_id": "root", "path_on_host": kernel,
                                   "is_root_device": True}, "/drives/{drive_id}")
    # a second root drive is refused by the description as a whole
    msg = api.fault("PUT", "/drives/two", {"drive_id": "two", "path_on_host": kernel,
                                           "is_root_device": True})
    assert "root device" in msg, msg
    assert [d["drive_id"] for d in api.ok("GET", "/vm/config")["drives"]] == ["root"]


@pytest.mark.parametrize("method,path", [("GET", "/nothing"), ("DELETE", "/machine-config"),
                                         ("POST", "/actions"), ("GET", "/drives/x"),
                                         ("PUT", "/drives/"), ("PUT", "/drives/a-b"),
                                         ("GET", "/vm"), ("PATCH", "/entropy")])
def test_unknown_path_or_method_is_400(api, method, path):
    msg = api.fault(method, path, {} if method in ("PUT", "POST") else None)
    assert "path" in msg, msg


@pytest.mark.parametrize("raw,names", [("not json", "JSON"), ("[1, 2]", "object"),
                                       ('{"vcpu_count": 1, "vcpu_count": 2}', "JSON"),
                                       ("", "body")])
def test_malformed_body_is_400(api, raw, names):
    msg = api.fault("PUT", "/machine-config", raw=raw)
    assert names in msg, msg


def http_status(answer):
    m = re.match(rb"HTTP/1\.1 (\d+) ", answer)
    return int(m.group(1)) if m else None


def fault_of(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    return json.loads(body)["fault_message"]


def test_malformed_http_is_400_then_closed(api):
    for data in [b"GARBAGE\r\n\r\n", b"PUT /vm HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"\x00\x01\x02\xff" * 10,
                 b"PUT /vm HTTP/1.1\r\nContent-Length: nope\r\n\r\n"]:
        answer = api.raw(data)
        assert http_status(answer) == 400, (data, answer)
        assert "malformed HTTP request" in fault_of(answer), answer
    assert api.ok("GET", "/")["state"] == "Not started"  # and the server goes on


def test_http_limits(api):
    body = b"{" + b" " * 60000 + b"}"
    answer = api.raw(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body)
    assert http_status(answer) == 400 and "51200" in fault_of(answer), answer[:300]
    # chunked, so the length is known only as it comes
    chunk = b"%x\r\n%s\r\n" % (30000, b" " * 30000)
    answer = api.raw(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                     b"\r\n\r\n" + chunk * 2 + b"0\r\n\r\n")
    assert http_status(answer) == 400 and "51200" in fault_of(answer), answer[:300]
    answer = api.raw(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n")
    assert http_status(answer) == 400 and "URL" in fault_of(answer), answer[:300]
    answer = api.raw(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 9000 + b"\r\n\r\n")
    assert http_status(answer) == 400 and "headers" in fault_of(answer), answer[:300]


def test_keep_alive_and_pipelined_requests_are_answered_in_order(api):
    req = (b"GET /machine-config HTTP/1.1\r\nHost: x\r\n\r\n"
           b"PATCH /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n"
           b'{"vcpu_count": 3}'
           b"GET /machine-config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = api.raw(req)
    statuses = [int(s) for s in re.findall(rb"HTTP/1\.1 (\d+) ", answer)]
    assert statuses == [200, 204, 200], answer
    assert answer.count(b'"vcpu_count":1') == 1 and answer.count(b'"vcpu_count":3') == 1, answer


def test_a_silent_client_does_not_block_others(api):
    """A client that sends half a request and waits holds a connection, not the loop."""
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.connect(api.sock)
    slow.sendall(b"PUT /machine-config HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    others = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(20)]
    for s in others:  # more than the server keeps: the oldest idle ones are dropped
        s.connect(api.sock)
    t0 = time.monotonic()
    assert api.ok("GET", "/")["state"] == "Not started"
    assert time.monotonic() - t0 < 5
    for s in others + [slow]:
        s.close()


def test_logger_and_metrics(api, tmp_path):
    log, metrics = tmp_path / "vessel.log", tmp_path / "metrics.json"
    api.ok("PUT", "/logger", {"log_path": str(log), "level": "Debug", "show_level": True})
    assert "configured already" in api.fault("PUT", "/logger", {"log_path": str(log)})
    api.ok("PUT", "/metrics", {"metrics_path": str(metrics), "emit_id": True,
                               "properties": {"team": "vessel"}})
    api.fault("PATCH", "/vm", {"state": "Paused"})
    api.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    api.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert len(lines) == 2, lines
    assert lines[0]["id"] == "test_vm_1" and lines[0]["properties"] == {"team": "vessel"}
    assert lines[0]["vmm"]["state"] == "Not started"
    assert lines[1]["api_server"]["requests"] == lines[0]["api_server"]["requests"] + 1
    assert lines[0]["api_server"]["faults"] >= 2
    cfg = api.ok("GET", "/vm/config")
    assert cfg["logger"]["log_path"] == str(log) and cfg["metrics"]["emit_id"] is True
    api.stop()
    # the debug level reached the log file: the refused PATCH /vm is in it
    assert "PATCH /vm" in log.read_text(), log.read_text()


def test_instance_start_with_a_bad_kernel_is_400_and_stays_not_started(api, kernel):
    api.ok("PUT", "/boot-source", {"kernel_image_path": kernel})
    msg = api.fault("PUT", "/actions", {"action_type": "InstanceStart"}, "/actions")
    assert "InstanceStart" in msg and "kernel" in msg, msg
    assert api.ok("GET", "/")["state"] == "Not started"


def test_socket_in_use_is_refused_and_removed_on_exit(vessel, spec):
    a = Api(vessel, spec)
    r = subprocess.run([vessel, "vm", "api", "--api-sock", a.sock], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "--api-sock" in r.stderr and "in use" in r.stderr, r.stderr
    sock = a.sock
    rc, err = a.stop(signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM, err
    assert not os.path.exists(sock)


@pytest.mark.parametrize("args,names", [([], "--api-sock"),
                                        (["--api-sock"], "needs a value"),
                                        (["--api-sock", "/tmp/x", "--bogus", "1"], "--bogus"),
                                        (["--api-sock", "/tmp/x", "--id", "a b"], "--id")])
def test_usage_errors(vessel, args, names):
    r = subprocess.run([vessel, "vm", "api", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and names in r.stderr, r.stderr


def test_config_file_errors_name_the_field(vessel, tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": "/k"},
                               "machine-config": {"vcpu_count": 1}}))
    sock = tempfile.mkdtemp(prefix="vapi") + "/s"
    r = subprocess.run([vessel, "vm", "api", "--api-sock", sock, "--config-file", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "machine-config.mem_size_mib" in r.stderr, r.stderr
    assert not os.path.exists(sock)


# ------------------------------------------------------------------ with a guest (KVM)

BOOT_TIMEOUT = 400
# The guest counts on its console, five ticks a second, until powered off; each tick is also
# written to its own 512-byte block of the disk (vda) and synced, so the host sees it.
COUNTER = ("i=0; while true; do echo T:TICK $i; "
           "echo T:DISK $i | dd of=/dev/vda bs=512 seek=$i conv=notrunc 2>/dev/null; sync; "
           "i=$((i+1)); sleep 0.2; done")
DISK_BLOCKS = 16384  # 8 MiB: room for 27 minutes of ticks


class Console:
    """The guest's console: vessel's stdout, a file the test reads as it grows."""

    def __init__(self, path):
        self.path = path

    def text(self):
        return self.path.read_text(errors="replace")

    def ticks(self):
        return [int(t) for t in re.findall(r"T:TICK (\d+)", self.text())]

    def wait_ticks(self, n_more, timeout, after=None):
        base = len(self.ticks()) if after is None else after
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.ticks()) >= base + n_more:
                return True
            time.sleep(0.2)
        return False


def boot_and_drive(vessel, spec, d):
    """One whole scenario on a fresh VMM: configure, InstanceStart, calls that are wrong
    once it runs, pause (ticks stop), resume (ticks go on from where they were), stop.
    Returns what it saw; .rc/.err as the triple-fault helper wants them."""
    from test_linux import images_dir
    images = images_dir()
    out = d / "console.txt"
    disk = d / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(DISK_BLOCKS * 512)
    seen = {}
    with open(out, "w") as stdout:
        a = Api(vessel, spec, ["--id", "kvm_vm"], stdout=stdout)
    con = Console(out)
    try:
        a.ok("PUT", "/boot-source", {
            "kernel_image_path": str(images / "vmlinuz"),
            "initrd_path": str(images / "initrd.img"),
            "boot_args": f'console=ttyS0 panic=-1 quiet -- sh -c "{COUNTER}"'})
        a.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256})
        a.ok("PUT", "/entropy", {})
        a.ok("PUT", "/drives/disk", {"drive_id": "disk", "path_on_host": str(disk),
                                     "is_root_device": False}, "/drives/{drive_id}")
        a.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        seen["state_started"] = a.ok("GET", "/")["state"]
        seen["after_start"] = {
            "boot-source": a.call("PUT", "/boot-source",
                                  {"kernel_image_path": str(images / "vmlinuz")},
                                  "/boot-source"),
            "machine-config": a.call("PATCH", "/machine-config", {"vcpu_count": 1},
                                     "/machine-config"),
            "drive": a.call("PUT", "/drives/d", {"drive_id": "d", "path_on_host": "/x",
                                                "is_root_device": False},
                            "/drives/{drive_id}"),
            "start": a.call("PUT", "/actions", {"action_type": "InstanceStart"}, "/actions"),
            "logger": a.call("PUT", "/logger", {"log_path": str(d / "l")}, "/logger"),
        }
        seen["vm_config"] = a.ok("GET", "/vm/config")
        seen["booted"] = con.wait_ticks(5, BOOT_TIMEOUT, after=0)
        if seen["booted"]:
            a.ok("PATCH", "/vm", {"state": "Paused"})
            seen["state_paused"] = a.ok("GET", "/")["state"]
            seen["paused_again"] = a.call("PATCH", "/vm", {"state": "Paused"}, "/vm")[0]
            seen["ctrl_alt_del_paused"] = a.call("PUT", "/actions",
                                                 {"action_type": "SendCtrlAltDel"})
            # a tick in flight may land just after the answer: count from a moment later
            time.sleep(0.5)
            before, disk_before = con.ticks(), disk.read_bytes()
            time.sleep(3)
            seen["ticks_while_paused"] = (before, con.ticks())
            seen["disk_unchanged_while_paused"] = disk.read_bytes() == disk_before
            a.ok("PATCH", "/vm", {"state": "Resumed"})
            seen["state_resumed"] = a.ok("GET", "/")["state"]
            seen["resumed_ticks"] = con.wait_ticks(5, 60, after=len(before))
            seen["ticks_after"] = con.ticks()
    finally:
        seen["rc"], seen["err"] = a.stop(signal.SIGTERM)
    data = disk.read_bytes()
    seen["disk_ticks"] = []
    for k in range(DISK_BLOCKS):
        m = re.match(rb"T:DISK (\d+)\n", data[k * 512:k * 512 + 32])
        if not m:
            break
        seen["disk_ticks"].append(int(m.group(1)))
    return Scenario(seen, con.text())


class Scenario:
    """What a scenario saw; its repr is the whole story, for assertion messages."""

    def __init__(self, seen, console):
        self.seen, self.console = seen, console
        self.rc, self.err = seen["rc"], seen["err"]

    def __str__(self):
        return (f"--- seen: { {k: v for k, v in self.seen.items() if k != 'err'} }\n"
                f"--- console (end):\n{self.console[-3000:]}\n--- stderr:\n{self.err[-3000:]}")

    __repr__ = __str__


@pytest.fixture(scope="module")
def booted(vessel, spec, tmp_path_factory):
    from test_linux import once_more_on_triple_fault
    return once_more_on_triple_fault(
        lambda: boot_and_drive(vessel, spec, tmp_path_factory.mktemp("apiboot")))


@pytest.mark.kvm
def test_instance_start_runs_the_guest(booted):
    assert booted.seen["state_started"] == "Running", booted
    assert booted.seen["booted"], booted


@pytest.mark.kvm
@pytest.mark.parametrize("call", ["boot-source", "machine-config", "drive", "start", "logger"])
def test_pre_boot_calls_are_400_after_start(booted, call):
    status, body = booted.seen["after_start"][call]
    assert status == 400, booted
    assert "InstanceStart" in body["fault_message"], body


@pytest.mark.kvm
def test_vm_config_after_start_is_what_booted(booted):
    cfg = booted.seen["vm_config"]
    assert cfg["machine-config"]["vcpu_count"] == 2 and cfg["entropy"] == {}, cfg
    assert "sh -c" in cfg["boot-source"]["boot_args"], cfg


@pytest.mark.kvm
def test_pause_stops_the_guest_and_resume_continues_it(booted):
    s = booted.seen
    assert s.get("booted"), booted
    assert s["state_paused"] == "Paused" and s["paused_again"] == 204, booted
    before, after = s["ticks_while_paused"]
    assert before == after, f"the guest ticked while paused: {before[-3:]} -> {after[-3:]}"
    assert s["state_resumed"] == "Running", booted
    assert s["resumed_ticks"], booted
    ticks = s["ticks_after"]
    # the counter goes on from where it stopped: no tick lost, none repeated
    assert ticks == list(range(len(ticks))), ticks


@pytest.mark.kvm
def test_pause_holds_the_disk_and_resume_lets_it_go_on(booted):
    s = booted.seen
    assert s.get("booted"), booted
    assert s["disk_unchanged_while_paused"], booted
    # every tick the guest counted before it was stopped is on the disk, in its block
    ticks = s["disk_ticks"]
    assert len(ticks) > len(s["ticks_while_paused"][0]), (ticks[-3:], booted)
    assert ticks == list(range(len(ticks))), ticks


@pytest.mark.kvm
def test_send_ctrl_alt_del_on_a_paused_vm_is_400(booted):
    status, body = booted.seen["ctrl_alt_del_paused"]
    assert status == 400 and "paused" in body["fault_message"], body



@pytest.mark.kvm
def test_sigterm_ends_the_running_vm_with_143(booted):
    assert booted.rc == 128 + signal.SIGTERM, booted


def boot_config_file(vessel, spec, d):
    """`vm api --config-file`: the VM boots at once, and the API serves it."""
    from test_linux import images_dir
    images = images_dir()
    cfg = {"boot-source": {"kernel_image_path": str(images / "vmlinuz"),
                           "initrd_path": str(images / "initrd.img"),
                           "boot_args": f'console=ttyS0 panic=-1 quiet -- sh -c "{COUNTER}"'},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 192}}
    disk = d / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(DISK_BLOCKS * 512)
    cfg["drives"] = [{"drive_id": "disk", "path_on_host": str(disk), "is_root_device": False}]
    (d / "vm.json").write_text(json.dumps(cfg))
    out = d / "console.txt"
    seen = {"cfg": cfg}
    with open(out, "w") as stdout:
        a = Api(vessel, spec, ["--config-file", str(d / "vm.json")], stdout=stdout)
    con = Console(out)
    try:
        seen["state"] = a.ok("GET", "/")["state"]
        seen["vm_config"] = a.ok("GET", "/vm/config")
        seen["booted"] = con.wait_ticks(3, BOOT_TIMEOUT, after=0)
        if seen["booted"]:
            a.ok("PATCH", "/vm", {"state": "Paused"})
            time.sleep(0.5)
            before = con.ticks()
            time.sleep(2)
            seen["ticks_while_paused"] = (before, con.ticks())
            a.ok("PATCH", "/vm", {"state": "Resumed"})
            seen["resumed_ticks"] = con.wait_ticks(3, 60, after=len(before))
    finally:
        seen["rc"], seen["err"] = a.stop(signal.SIGTERM)
    return Scenario(seen, con.text())


@pytest.fixture(scope="module")
def from_file(vessel, spec, tmp_path_factory):
    from test_linux import once_more_on_triple_fault
    return once_more_on_triple_fault(
        lambda: boot_config_file(vessel, spec, tmp_path_factory.mktemp("apifile")))


@pytest.mark.kvm
def test_config_file_boots_at_once_and_the_api_serves_it(from_file):
    s = from_file.seen
    assert s["state"] == "Running", from_file
    assert s["vm_config"]["boot-source"] == s["cfg"]["boot-source"], s["vm_config"]
    assert s["vm_config"]["drives"] == s["cfg"]["drives"], s["vm_config"]
    assert s["vm_config"]["machine-config"]["mem_size_mib"] == 192
    assert s["booted"], from_file
    before, after = s["ticks_while_paused"]
    assert before == after, (before[-3:], after[-3:])
    assert s["resumed_ticks"], from_file
    assert from_file.rc == 128 + signal.SIGTERM, from_file


def boot_ctrl_alt_del(vessel, spec, d):
    """The default guest with no i8042 arguments: Linux finds the controller in the DSDT and
    its keyboard; SendCtrlAltDel then makes Linux restart, which ends vessel with 3."""
    from test_linux import images_dir
    images = images_dir()
    out = d / "console.txt"
    seen = {}
    with open(out, "w") as stdout:
        a = Api(vessel, spec, [], stdout=stdout)
    con = Console(out)
    try:
        a.ok("PUT", "/boot-source", {
            "kernel_image_path": str(images / "vmlinuz"),
            "initrd_path": str(images / "initrd.img"),
            "boot_args": f'console=ttyS0 panic=-1 -- sh -c "{COUNTER}"'})
        a.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        seen["booted"] = con.wait_ticks(3, BOOT_TIMEOUT, after=0)
        if seen["booted"]:
            seen["cad"] = a.call("PUT", "/actions", {"action_type": "SendCtrlAltDel"},
                                 "/actions")
            t0 = time.monotonic()
            try:
                a.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                pass
            seen["exit_s"] = round(time.monotonic() - t0, 1)
    finally:
        seen["rc"], seen["err"] = a.stop(signal.SIGTERM)
    return Scenario(seen, con.text())


@pytest.fixture(scope="module")
def ctrl_alt_del(vessel, spec, tmp_path_factory):
    from test_linux import once_more_on_triple_fault
    return once_more_on_triple_fault(
        lambda: boot_ctrl_alt_del(vessel, spec, tmp_path_factory.mktemp("apicad")))


@pytest.mark.kvm
def test_send_ctrl_alt_del_restarts_a_linux_guest(ctrl_alt_del):
    s = ctrl_alt_del.seen
    assert s["booted"], ctrl_alt_del
    assert s["cad"][0] == 204, ctrl_alt_del
    assert ctrl_alt_del.rc == 3, ctrl_alt_del  # the guest's reset: vm run's status for it
    assert "serio: i8042 KBD port" in ctrl_alt_del.console, ctrl_alt_del
    assert "reboot: Restarting system" in ctrl_alt_del.console, ctrl_alt_del


# ------------------------------------------------------------------ PATCH of a started VM's devices

# Three loops in the guest: (1) vda's size and the 6-byte mark at its start (read past the
# page cache) whenever they change; (2) 64 KiB direct reads of vda, one line each, to
# measure the disk's rate; (3) 8000-byte pings of the host, one line each answered, for
# the network's. No double quote: the kernel's command line holds the script.
PATCH_SCRIPT = (
    "ip addr add {guest}/24 dev eth0 && ip link set eth0 up; "
    "(p=x; while true; do m=$(dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null "
    "| head -c 6); s=$(cat /sys/block/vda/size); [ $s:$m != $p ] && echo T:SZ $s $m "
    "&& p=$s:$m; sleep 0.3; done) & "
    "(i=0; while true; do dd if=/dev/vda of=/dev/null bs=64k count=1 skip=$((i%64)) "
    "iflag=direct 2>/dev/null && echo T:R $i; i=$((i+1)); done) & "
    "i=0; while true; do ping -c 1 -W 5 -s 8000 {host} >/dev/null 2>&1 && echo T:P $i; "
    "i=$((i+1)); done")
READ_BYTES = 64 << 10
PING_BYTES = 8000
DISK_A_SECTORS, DISK_B_SECTORS = 8192, 12288  # 4 MiB, then 6 MiB


def make_disk(path, mark, sectors):
    with open(path, "wb") as f:
        f.write(mark.ljust(512, b"\0"))
        f.truncate(sectors * 512)


def count(con, tag):
    return len(re.findall(rf"T:{tag} \d+", con.text()))


def rate(con, tag, seconds):
    """Lines of a tag per second over the next `seconds`."""
    before, t0 = count(con, tag), time.monotonic()
    time.sleep(seconds)
    return (count(con, tag) - before) / (time.monotonic() - t0)


def sizes(con):
    return re.findall(r"T:SZ (\d+) (\w*)", con.text())


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.3)
    return False


def patch_scenario(vessel, spec, d):
    """A guest with a drive and an interface (a tap in a namespace of the test's): their rate
    limiters are patched while it runs and the rates it sees are measured; the drive's file is
    swapped while it is paused and the guest sees the new size and content once resumed."""
    from test_linux import images_dir
    from test_virtio_net import GUEST_IP, GUEST_MAC, HOST_IP, ip
    images = images_dir()
    disk_a, disk_b = d / "a.img", d / "b.img"
    make_disk(disk_a, b"DISK_A", DISK_A_SECTORS)
    make_disk(disk_b, b"DISK_B", DISK_B_SECTORS)
    ns = "vspatch-" + os.urandom(4).hex()
    ip("netns", "add", ns)
    wrapper = d / "vessel-in-ns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {vessel} "$@"\n')
    wrapper.chmod(0o755)
    s = {}
    a = None
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "tuntap", "add", "dev", "ptap0", "mode", "tap")
        ip("-n", ns, "addr", "add", f"{HOST_IP}/24", "dev", "ptap0")
        ip("-n", ns, "link", "set", "ptap0", "up")
        out = d / "console.txt"
        with open(out, "w") as stdout:
            a = Api(str(wrapper), spec, ["--id", "patch"], stdout=stdout)
        con = Console(out)
        a.ok("PUT", "/boot-source", {
            "kernel_image_path": str(images / "vmlinuz"),
            "initrd_path": str(images / "initrd.img"),
            "boot_args": 'console=ttyS0 panic=-1 quiet -- sh -c "'
                         + PATCH_SCRIPT.format(guest=GUEST_IP, host=HOST_IP) + '"'})
        # One vCPU: in the emulated KVM host a 2-vCPU guest pinging in a tight loop stopped
        # (RCU stalls, once a triple fault) within 25 s in 3 runs of 3, and QEMU microvm's
        # guest under the same load brought down the emulated host's own kernel; one vCPU
        # ran it 200 s clean (docs/testing.md)
        a.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256})
        a.ok("PUT", "/drives/data", {"drive_id": "data", "path_on_host": str(disk_a),
                                     "is_root_device": False}, "/drives/{drive_id}")
        a.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "ptap0",
                                                 "guest_mac": GUEST_MAC},
             "/network-interfaces/{iface_id}")
        a.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        s["booted"] = wait_for(lambda: count(con, "R") >= 5 and count(con, "P") >= 2,
                               BOOT_TIMEOUT)
        if not s["booted"]:
            return s
        s["size_a"] = sizes(con)
        # refused PATCHes: each a 400 naming the member, the drive unchanged
        s["bad"] = {
            "missing file": a.call("PATCH", "/drives/data",
                                   {"drive_id": "data", "path_on_host": str(d / "nope.img")},
                                   "/drives/{drive_id}"),
            "unknown id": a.call("PATCH", "/drives/other",
                                 {"drive_id": "other", "path_on_host": str(disk_b)},
                                 "/drives/{drive_id}"),
            "read-only member": a.call("PATCH", "/drives/data",
                                       {"drive_id": "data", "is_read_only": True},
                                       "/drives/{drive_id}"),
            "bucket without refill_time": a.call(
                "PATCH", "/drives/data",
                {"drive_id": "data", "rate_limiter": {"bandwidth": {"size": 1000}}},
                "/drives/{drive_id}"),
            "net nothing": a.call("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0"},
                                  "/network-interfaces/{iface_id}"),
            "net host_dev_name": a.call("PATCH", "/network-interfaces/eth0",
                                        {"iface_id": "eth0", "host_dev_name": "x"},
                                        "/network-interfaces/{iface_id}"),
        }
        # the rates the guest gets with no limit
        s["disk_free"] = rate(con, "R", 10) * READ_BYTES
        s["net_free"] = rate(con, "P", 10) * PING_BYTES
        # a limit on each, while it runs: 64 KiB/s for the disk, 4 KiB/s out of the guest
        a.ok("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "bandwidth": {"size": 65536, "refill_time": 1000}}}, "/drives/{drive_id}")
        a.ok("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0", "tx_rate_limiter": {
            "bandwidth": {"size": 4096, "refill_time": 1000}}},
             "/network-interfaces/{iface_id}")
        time.sleep(3)  # the buckets start full, and a ping may be on its way
        s["disk_limited"] = rate(con, "R", 16) * READ_BYTES
        s["net_limited"] = rate(con, "P", 16) * PING_BYTES
        # the limits taken off (size 0), the rates come back
        a.ok("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "bandwidth": {"size": 0, "refill_time": 0}}}, "/drives/{drive_id}")
        a.ok("PATCH", "/network-interfaces/eth0", {"iface_id": "eth0", "tx_rate_limiter": {
            "bandwidth": {"size": 0, "refill_time": 0}}}, "/network-interfaces/{iface_id}")
        time.sleep(3)
        s["disk_again"] = rate(con, "R", 10) * READ_BYTES
        # another file while paused: the guest sees it once resumed, not before
        a.ok("PATCH", "/vm", {"state": "Paused"})
        a.ok("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(disk_b)},
             "/drives/{drive_id}")
        s["state_after_swap"] = a.ok("GET", "/")["state"]
        time.sleep(2)  # a line the guest wrote before the pause reaches the console file
        reads = count(con, "R")
        time.sleep(2)
        s["reads_while_paused"] = count(con, "R") - reads
        a.ok("PATCH", "/vm", {"state": "Resumed"})
        s["saw_b"] = wait_for(lambda: ("%d" % DISK_B_SECTORS, "DISK_B") in sizes(con), 180)
        s["sizes"] = sizes(con)
        s["reads_after_swap"] = wait_for(lambda: count(con, "R") >= reads + 5, 180)
        s["config"] = a.ok("GET", "/vm/config")
    finally:
        if a:
            s["rc"], s["err"] = a.stop(signal.SIGTERM)
            s["console"] = Console(d / "console.txt").text()
        ip("netns", "del", ns, check=False)
    return s


@pytest.fixture(scope="module")
def patched(vessel, spec, tmp_path_factory):
    s = patch_scenario(vessel, spec, tmp_path_factory.mktemp("apipatch"))
    shown = {k: v for k, v in s.items() if k not in ("console", "err", "config")}
    print(f"\nPATCH scenario: {shown}")
    return s


def story(s):
    return (f"{ {k: v for k, v in s.items() if k not in ('console', 'err')} }\n"
            f"--- console (end):\n{s.get('console', '')[-3000:]}\n"
            f"--- stderr:\n{s.get('err', '')[-3000:]}")


@pytest.mark.kvm
def test_bad_patches_of_a_running_vm_are_400_naming_the_member(patched):
    assert patched.get("booted"), story(patched)
    bad = patched["bad"]
    names = {"missing file": "path_on_host", "unknown id": "no drive `other`",
             "read-only member": "is_read_only",
             "bucket without refill_time": "rate_limiter.bandwidth.refill_time",
             "net nothing": "nothing to change", "net host_dev_name": "host_dev_name"}
    for what, (status, body) in bad.items():
        assert status == 400 and names[what] in body["fault_message"], (what, body)
    # the refused file changed nothing: the guest saw disk A only, until the swap
    assert patched["size_a"] == [(str(DISK_A_SECTORS), "DISK_A")], story(patched)


@pytest.mark.kvm
def test_a_disk_rate_limiter_patched_on_a_running_vm_takes_effect(patched):
    assert patched.get("booted"), story(patched)
    free, limited, again = (patched["disk_free"], patched["disk_limited"],
                            patched["disk_again"])
    print(f"\ndisk reads: {free / 1024:.0f} KiB/s free, {limited / 1024:.0f} KiB/s at "
          f"64 KiB/s, {again / 1024:.0f} KiB/s with the limit taken off")
    # ratios, with room for an emulated host: the limit holds (within 2x of it) and is
    # far below what the guest got without it, and taking it off gives that back
    # a guest that stopped reading is not a limited one: reads go on, slowly
    assert 0 < limited <= 2 * 65536, story(patched)
    assert free >= 3 * limited and again >= 3 * limited, story(patched)


@pytest.mark.kvm
def test_a_network_rate_limiter_patched_on_a_running_vm_takes_effect(patched):
    assert patched.get("booted"), story(patched)
    free, limited = patched["net_free"], patched["net_limited"]
    print(f"\npings out of the guest: {free / 1024:.1f} KiB/s free, {limited / 1024:.1f} "
          "KiB/s at 4 KiB/s")
    # each ping's 8000 bytes leave as frames of the one ICMP message: at 4 KiB/s at most
    # one in two seconds gets through (within 2x)
    assert 0 < limited <= 2 * 4096, story(patched)
    assert free >= 3 * limited, story(patched)


@pytest.mark.kvm
def test_a_drive_patched_to_another_file_shows_its_size_and_content(patched):
    assert patched.get("booted"), story(patched)
    assert patched["state_after_swap"] == "Paused", story(patched)
    assert patched["reads_while_paused"] == 0, story(patched)
    assert patched["saw_b"], story(patched)
    # A until the swap, then B: its size (the config-change interrupt) and its first bytes
    seen = [m for _, m in patched["sizes"]]
    assert seen[0] == "DISK_A" and seen[-1] == "DISK_B", story(patched)
    assert patched["reads_after_swap"], story(patched)
    drive = patched["config"]["drives"][0]
    assert drive["path_on_host"].endswith("b.img"), drive
    assert drive["rate_limiter"]["bandwidth"]["size"] == 0, drive
    net = patched["config"]["network-interfaces"][0]
    assert net["tx_rate_limiter"]["bandwidth"]["size"] == 0, net
    assert patched["rc"] == 128 + signal.SIGTERM, story(patched)
