"""What the benches' Python programs share: a QMP client for the QEMU peer and a curl
call on vessel's API socket. Errors end the bench with one line naming the script
(BENCH_NAME, which bench/lib.sh exports)."""
import json
import os
import socket
import subprocess
import time

NAME = os.environ.get("BENCH_NAME", "bench")


class Qmp:
    """QEMU's QMP socket, connected once it exists (QEMU makes it while it starts)."""

    def __init__(self, path, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise SystemExit(f"{NAME}: no QMP socket at {path} after {timeout} s")
                time.sleep(0.005)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            m = json.loads(self.f.readline())
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise SystemExit(f"{NAME}: QMP {name}: {m['error']}")


def curl(sock, method, path, body=None):
    """One call on vessel's API socket (Firecracker's API): the body of a 200 or 204."""
    cmd = ["curl", "-sS", "--unix-socket", sock, "-X", method, "-w", "\n%{http_code}",
           f"http://localhost{path}"]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    text, status = r.stdout.rsplit("\n", 1)
    if status not in ("200", "204"):
        raise SystemExit(f"{NAME}: {method} {path}: {status} {text}")
    return text
