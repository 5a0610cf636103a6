"""The kubelet's side of the Container Runtime Interface, for the tests and bench/cri.sh.

A kubelet drives containerd's CRI plugin over gRPC (runtime.v1). Debian has no kubelet or
crictl, but it has gRPC: the stubs are generated at test time from the CRI's own proto
(clients/cri-api.proto, Kubernetes' pkg/apis/runtime/v1/api.proto as in
shared/anchors/) with python3-grpc-tools, and the calls go through python3-grpcio.

`CriContainerd` starts a containerd of its own with the CRI plugin on (clients/
containerd-cri.toml holding docs/kubernetes.md's runtime entry), inside a private network
namespace where the CNI bridge and the pods' veths live and die, with a pause image built
here from clients/pause.c (nothing can be pulled). Exec's streams come from the CRI
streaming server over a websocket (the kubelet's other protocol, SPDY, has no Python
client in Debian).
"""
import ctypes
import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

from clients import (CGROUP, TEMPLATES, NetNS, busybox_rootfs, kill_processes_naming,
                     mounts_under, oci_archive, remove_cgroups, render,
                     short_work_dir, unmount_under, wait_for)
from conftest import ROOT, run

PROTO = TEMPLATES / "cri-api.proto"
DOC = ROOT / "docs" / "kubernetes.md"
PAUSE_IMAGE = "localhost/vessel/pause:test"
BUSYBOX_IMAGE = "localhost/vessel/busybox:test"
K8S_NAMESPACE = "k8s.io"  # containerd namespace of the CRI plugin's images and containers
NODE_VESSEL = "/usr/local/bin/vessel"


# ------------------------------------------------------------------------ gRPC stubs
def cri_stubs(out_dir):
    """(messages, services) modules generated from the CRI proto into out_dir. Debian 12's
    protoc (3.21) does not know the `debug_redact` field option, which only marks fields
    for redaction in logs: it is stripped first."""
    from grpc_tools import protoc
    text = re.sub(r"\s*\[debug_redact = true\]", "", PROTO.read_text())
    (out_dir / "cri_api.proto").write_text(text)
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{out_dir}", f"-I{include}", f"--python_out={out_dir}",
                      f"--grpc_python_out={out_dir}", str(out_dir / "cri_api.proto")])
    assert rc == 0, f"protoc failed on {PROTO} ({rc})"
    sys.path.insert(0, str(out_dir))
    try:
        return (importlib.import_module("cri_api_pb2"),
                importlib.import_module("cri_api_pb2_grpc"))
    finally:
        sys.path.remove(str(out_dir))


# --------------------------------------------------------------------------- images
def build_pause_image(work, ref=PAUSE_IMAGE):
    """An OCI archive of one static program, /pause (clients/pause.c)."""
    rootfs = work / "pause-rootfs"
    rootfs.mkdir(parents=True)
    r = run(["gcc", "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-o",
             str(rootfs / "pause"), str(TEMPLATES / "pause.c")], timeout=120)
    assert r.returncode == 0, f"building the pause program: {r.stderr}"
    return oci_archive(rootfs, work / "pause.tar", ref, cmd=["/pause"])


def doc_runtime_entry(vessel):
    """docs/kubernetes.md's containerd runtime entry for vessel, word for word, the node's
    binary path replaced by the one under test."""
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    entries = [b for b in blocks
               if b.startswith('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vessel]')]
    assert len(entries) == 1, f"{DOC}: expected one toml block that is the vessel runtime entry"
    assert f'BinaryName = "{NODE_VESSEL}"' in entries[0], entries[0]
    return entries[0].rstrip("\n").replace(NODE_VESSEL, vessel)


# ------------------------------------------------------------------------ network ns
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def connect_in_netns(netns_path, host, port, timeout=10):
    """A TCP connection made from inside a network namespace: a thread of its own enters
    it (setns changes only the calling thread) and connects; the socket keeps belonging to
    that namespace afterwards, whichever thread uses it."""
    out = {}

    def work():
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns_path}")
            finally:
                os.close(fd)
            out["sock"] = socket.create_connection((host, port), timeout=timeout)
        except Exception as e:  # handed to the caller's thread
            out["error"] = e

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["sock"]


# ------------------------------------------------------------------ the CRI daemon
class CriContainerd:
    """containerd with the CRI plugin, a kubelet's view of it (gRPC stubs), and the
    cleanup that proves nothing is left."""

    def __init__(self, vessel, runc="/usr/sbin/runc", restrict_oom_score_adj=False,
                 log_level="info"):
        import grpc
        self.vessel = vessel
        self.work = work = short_work_dir("vessel-cri-")
        self.cgroup_parent = f"vessel-cri-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.socket = work / "containerd.sock"
        self.pb, services = cri_stubs(work)
        (work / "net.d").mkdir()
        (work / "net.d" / "10-vessel.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0",
            "name": "vessel-pods",
            "plugins": [{
                "type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False,
                "ipam": {"type": "host-local", "dataDir": str(work / "ipam"),
                         "ranges": [[{"subnet": "10.88.0.0/24"}]],
                         "routes": [{"dst": "0.0.0.0/0"}]},
            }],
        }, indent=1))
        self.config = render("containerd-cri.toml", work / "containerd.toml", work=work,
                             pause_image=PAUSE_IMAGE, runc=runc,
                             vessel_entry=doc_runtime_entry(vessel),
                             restrict_oom_score_adj=str(restrict_oom_score_adj).lower())
        self.netns = NetNS()
        self.log = work / "containerd.log"
        self.daemon = None
        self.channel = None
        try:
            with open(self.log, "w") as log:
                self.daemon = subprocess.Popen(
                    self.netns.enter("containerd", "--log-level", log_level, "--config",
                                     str(self.config)),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            wait_for(lambda: self.daemon.poll() is not None or self.socket.exists(),
                     timeout=30, what="containerd's socket")
            assert self.daemon.poll() is None, f"containerd exited:\n{self.log_tail()}"
            self.channel = grpc.insecure_channel(f"unix://{self.socket}")
            grpc.channel_ready_future(self.channel).result(timeout=30)
            self.runtime = services.RuntimeServiceStub(self.channel)
            self.images = services.ImageServiceStub(self.channel)
            # the CRI plugin answers once its CNI configuration is loaded
            wait_for(self.network_ready, timeout=30, what="the CRI plugin's network")
        except BaseException:
            self.stop()
            raise

    # ---- the daemon
    def log_tail(self, lines=40):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def network_ready(self):
        status = self.runtime.Status(self.pb.StatusRequest()).status
        return all(c.status for c in status.conditions)

    def ctr(self, *args, timeout=120):
        return run(["ctr", "--address", str(self.socket), "--namespace", K8S_NAMESPACE,
                    *args], timeout=timeout)

    def import_image(self, archive):
        """`ctr images import` into the CRI plugin's namespace: how a node side-loads an
        image, and the CRI's ImageStatus sees it as pulled."""
        r = self.ctr("images", "import", str(archive))
        assert r.returncode == 0, f"ctr images import {archive}: {r.stderr}"

    def import_test_images(self):
        images = self.work / "images"
        images.mkdir()
        self.import_image(build_pause_image(images))
        rootfs = busybox_rootfs(images / "busybox", self.vessel)
        self.import_image(oci_archive(rootfs, images / "busybox.tar", BUSYBOX_IMAGE))

    # ---- the kubelet's calls
    def pod_config(self, name, pid=None, attempt=0):
        """A PodSandboxConfig as the kubelet fills it for a pod: metadata, a cgroup parent
        of its own (the kubelet's /kubepods/... under cgroupfs), a log directory; the pod's
        containers share its pid namespace when pid is NamespaceMode POD."""
        pb = self.pb
        uid = uuid.uuid4().hex
        ns_options = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER if pid is None
                                        else pid, ipc=pb.POD)
        logs = self.work / "pods" / uid
        logs.mkdir(parents=True)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace="default",
                                           attempt=attempt),
            hostname=name,
            log_directory=str(logs),
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"/{self.cgroup_parent}/pod{uid}",
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns_options)))

    def run_pod(self, config, handler="vessel"):
        return self.runtime.RunPodSandbox(
            self.pb.RunPodSandboxRequest(config=config, runtime_handler=handler),
            timeout=120).pod_sandbox_id

    def container_config(self, name, argv, pod_config, image=BUSYBOX_IMAGE, attempt=0,
                         resources=None, env=None):
        pb = self.pb
        ns = pod_config.linux.security_context.namespace_options
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=attempt),
            image=pb.ImageSpec(image=image),
            command=argv[:1], args=argv[1:],
            envs=[pb.KeyValue(key=k, value=v) for k, v in (env or {}).items()],
            log_path=f"{name}_{attempt}.log",
            linux=pb.LinuxContainerConfig(
                resources=resources,
                security_context=pb.LinuxContainerSecurityContext(
                    namespace_options=pb.NamespaceOption(network=pb.POD, pid=ns.pid,
                                                         ipc=pb.POD))))

    def create_container(self, pod_id, pod_config, config):
        return self.runtime.CreateContainer(
            self.pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config,
                                           sandbox_config=pod_config),
            timeout=120).container_id

    def start_container(self, cid):
        self.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid),
                                    timeout=120)

    def run_container(self, pod_id, pod_config, name, argv, **kw):
        cid = self.create_container(pod_id, pod_config,
                                    self.container_config(name, argv, pod_config, **kw))
        self.start_container(cid)
        return cid

    def container_status(self, cid):
        return self.runtime.ContainerStatus(
            self.pb.ContainerStatusRequest(container_id=cid, verbose=True),
            timeout=60)

    def container_pid(self, cid):
        return json.loads(self.container_status(cid).info["info"])["pid"]

    def wait_exited(self, cid, timeout=30):
        return wait_for(lambda: (lambda s: s if s.state == self.pb.CONTAINER_EXITED else None)(
            self.container_status(cid).status), timeout=timeout, interval=0.1,
            what=f"container {cid[:12]} to exit")

    def exec_sync(self, cid, argv, timeout=30):
        return self.runtime.ExecSync(
            self.pb.ExecSyncRequest(container_id=cid, cmd=argv, timeout=timeout),
            timeout=timeout + 30)

    def exec_url(self, cid, argv, stdin=False, tty=False):
        return self.runtime.Exec(
            self.pb.ExecRequest(container_id=cid, cmd=argv, stdin=stdin, tty=tty,
                                stdout=True, stderr=not tty), timeout=60).url

    def stream_exec(self, url, stdin=b"", timeout=30):
        """Runs an Exec's URL over the websocket protocol of the CRI streaming server
        (v4.channel.k8s.io: each binary frame starts with its channel: 0 stdin, 1 stdout,
        2 stderr, 3 the final status as JSON). Returns (stdout, stderr, status)."""
        import websocket
        parts = urllib.parse.urlsplit(url)
        sock = connect_in_netns(self.netns.path, parts.hostname, parts.port, timeout)
        ws = websocket.create_connection(url.replace("http", "ws", 1), socket=sock,
                                         subprotocols=["v4.channel.k8s.io"], timeout=timeout)
        out = {1: b"", 2: b""}
        status = None
        try:
            if stdin:
                ws.send_binary(b"\0" + stdin)
            while True:
                try:
                    opcode, data = ws.recv_data()
                except websocket.WebSocketConnectionClosedException:
                    break
                if opcode == websocket.ABNF.OPCODE_CLOSE or not data:
                    if opcode == websocket.ABNF.OPCODE_CLOSE:
                        break
                    continue
                channel, payload = data[0], data[1:]
                if channel in out:
                    out[channel] += payload
                elif channel == 3 and payload:
                    status = json.loads(payload)
        finally:
            ws.close()
        return out[1], out[2], status

    def update_resources(self, cid, resources):
        self.runtime.UpdateContainerResources(
            self.pb.UpdateContainerResourcesRequest(container_id=cid, linux=resources),
            timeout=60)

    def stop_container(self, cid, timeout=10):
        self.runtime.StopContainer(self.pb.StopContainerRequest(container_id=cid,
                                                                timeout=timeout),
                                   timeout=timeout + 60)

    def remove_container(self, cid):
        self.runtime.RemoveContainer(self.pb.RemoveContainerRequest(container_id=cid),
                                     timeout=60)

    def list_containers(self, pod_id=None):
        f = self.pb.ContainerFilter(pod_sandbox_id=pod_id) if pod_id else None
        return self.runtime.ListContainers(self.pb.ListContainersRequest(filter=f),
                                           timeout=60).containers

    def container_stats(self, cid):
        return self.runtime.ContainerStats(
            self.pb.ContainerStatsRequest(container_id=cid), timeout=60).stats

    def pod_status(self, pod_id):
        return self.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True), timeout=60)

    def remove_pod(self, pod_id):
        """What the kubelet does when a pod goes: stop the sandbox (its containers are
        stopped with it), then remove it (its containers are removed with it)."""
        self.runtime.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                    timeout=120)
        self.runtime.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                      timeout=120)

    def list_pods(self):
        return self.runtime.ListPodSandbox(self.pb.ListPodSandboxRequest(), timeout=60).items

    # ---- what a pod leaves on the host
    def leftovers(self):
        """Everything of this daemon's pods still on the host: processes running a
        container (in a cgroup under our parent), cgroups, mounts of containers (rootfs,
        /dev/shm) and pod network namespaces (mounted under the state directory)."""
        left = []
        for hierarchy in [CGROUP, *[p for p in CGROUP.iterdir() if p.is_dir()]]:
            top = hierarchy / self.cgroup_parent
            if not top.is_dir():
                continue
            for d in [top, *top.rglob("*")]:
                if not d.is_dir():
                    continue
                procs = (d / "cgroup.procs").read_text().split() if (d / "cgroup.procs").exists() else []
                left += [f"process {p} in {d}" for p in procs]
                if d != top:
                    left.append(f"cgroup {d}")
        left += [f"mount {m}" for m in mounts_under(self.work / "state")
                 if "/io.containerd.grpc.v1.cri/" in m or "/io.containerd.runtime.v2.task/" in m
                 or "/netns/" in m]
        netns_dir = self.work / "state" / "io.containerd.grpc.v1.cri" / "netns"
        if netns_dir.is_dir():
            left += [f"netns {p}" for p in netns_dir.iterdir()]
        return left

    def stop(self):
        """Removes what the tests left, stops containerd and its shims, unmounts, removes
        the cgroups and the network namespace. Returns what had to be forced."""
        problems = []
        if self.channel is not None and self.daemon.poll() is None:
            try:
                for pod in self.list_pods():
                    problems.append(f"pod {pod.metadata.name} left running")
                    self.remove_pod(pod.id)
            except Exception as e:  # grpc.RpcError and timeouts: report, clean up anyway
                problems.append(f"cleanup through the CRI failed: {e}")
        if self.channel is not None:
            self.channel.close()
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
                problems.append("containerd did not stop on SIGTERM")
        # a shim outlives containerd by design; ours name our socket on their command line
        problems += kill_processes_naming(str(self.socket), "leftover shim")
        left = self.leftovers()
        problems += left
        # a container whose shim died (killed above, or crashed) is an orphan still in
        # its cgroup: reported above, killed here so a failed run leaves nothing running
        for line in left:
            if line.startswith("process "):
                try:
                    os.kill(int(line.split()[1]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.2)
        unmount_under(self.work)
        left = remove_cgroups(self.cgroup_parent)
        if left:
            problems.append(f"cgroups left: {left}")
        self.netns.delete()
        shutil.rmtree(self.work)
        return problems

