"""Kubernetes' own path: the calls a kubelet makes, over gRPC (CRI runtime.v1), to
containerd's CRI plugin, which runs pods with the RuntimeClass handler `vessel`
(docs/kubernetes.md) through the runc v2 shim.

One containerd per module (tests/integration/cri.py): CRI plugin on, CNI bridge network in
a private network namespace, a pause image built here. Each test's pods are stopped and
removed by the kubelet's calls afterwards; the module's teardown fails if anything of any
pod is left on the host.
"""
import json
import os
import re

import grpc
import pytest

from clients import TEMPLATES, cgroup_dir, processes_naming, wait_for
from conftest import oom_score_floor, run
from cri import DOC, K8S_NAMESPACE, PAUSE_IMAGE, CriContainerd, doc_runtime_entry

MiB = 1 << 20


@pytest.fixture(scope="module")
def cri(vessel):
    daemon = CriContainerd(vessel)
    try:
        daemon.import_test_images()
        yield daemon
    finally:
        problems = daemon.stop()
        assert not problems, f"the CRI tests left things behind: {problems}"


@pytest.fixture
def pods(cri):
    """Starts pods for one test (RunPodSandbox with the `vessel` handler); stops and
    removes each afterwards, as the kubelet does when a pod is deleted."""
    made = []

    def new(name, **kw):
        config = cri.pod_config(name, **kw)
        pod_id = cri.run_pod(config)
        made.append(pod_id)
        return pod_id, config

    yield new
    for pod_id in made:
        cri.remove_pod(pod_id)


def pid_of(cri, cid):
    return cri.container_pid(cid)


def ns_inode(pid, kind):
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def exec_ok(cri, cid, argv, timeout=30):
    r = cri.exec_sync(cid, argv, timeout=timeout)
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    return r.stdout.decode()


# ---------------------------------------------------------------------- the daemon
def test_containerd_runs_the_docs_runtime_entry(cri):
    """The daemon runs docs/kubernetes.md's runtime entry word for word (its node path
    replaced), and containerd reads it as the doc says: the runc v2 shim, vessel as its
    binary. The CRI plugin reports itself ready, runtime and network."""
    entry = doc_runtime_entry(cri.vessel)
    assert entry in cri.config.read_text()
    r = run(["containerd", "--config", str(cri.config), "config", "dump"], timeout=30)
    assert r.returncode == 0, r.stderr
    table = r.stdout.split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vessel]')
    assert len(table) == 2, r.stdout
    section, options = table[1].split("\n\n")[:2]
    assert 'runtime_type = "io.containerd.runc.v2"' in section
    assert f'BinaryName = "{cri.vessel}"' in options
    version = cri.runtime.Version(cri.pb.VersionRequest(), timeout=30)
    assert version.runtime_name == "containerd" and version.runtime_api_version == "v1"
    conditions = {c.type: c.status for c in
                  cri.runtime.Status(cri.pb.StatusRequest(), timeout=30).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}


def test_docs_show_the_cri_tests_containerd_config():
    """docs/kubernetes.md shows the CRI tests' containerd config as it is (its comments
    left out); the runtime entry in it is the doc's own (test above)."""
    template = (TEMPLATES / "containerd-cri.toml").read_text()
    shown = "".join(line + "\n" for line in template.splitlines()
                    if not line.lstrip().startswith("#"))
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert shown in blocks


def test_imported_images_are_the_cri_plugins(cri):
    """No registry: the images imported with ctr into k8s.io are what ImageStatus sees,
    the pause image among them (the sandbox_image)."""
    for ref in (PAUSE_IMAGE, "localhost/vessel/busybox:test"):
        status = cri.images.ImageStatus(
            cri.pb.ImageStatusRequest(image=cri.pb.ImageSpec(image=ref)), timeout=30)
        assert ref in status.image.repo_tags, status


# -------------------------------------------------------------------------- pods
def test_pod_sandbox_runs_under_vessel(cri, pods):
    """RunPodSandbox with runtime_handler `vessel`: the pause container is vessel's (its
    state is in the shim's vessel Root), it has the pod's IP from the CNI bridge, and the
    sandbox's oomScoreAdj of -998 is applied as far as the kernel lets root here."""
    pod_id, _ = pods("sandbox")
    status = cri.pod_status(pod_id)
    assert status.status.state == cri.pb.SANDBOX_READY
    assert re.fullmatch(r"10\.88\.0\.\d+", status.status.network.ip), status.status.network
    info = json.loads(status.info["info"])
    assert info["runtimeHandler"] == "vessel"
    r = run([cri.vessel, "--root", str(cri.work / "vessel" / K8S_NAMESPACE), "state", pod_id],
            timeout=30)
    assert r.returncode == 0, r.stderr
    state = json.loads(r.stdout)
    assert state["status"] == "running"
    pid = state["pid"]
    assert open(f"/proc/{pid}/cmdline").read() == "/pause\0"
    assert int(open(f"/proc/{pid}/oom_score_adj").read()) == oom_score_floor(-998)


def test_two_containers_share_the_pods_network(cri, pods):
    """One container serves on 127.0.0.1, the other reaches it there: both are in the
    sandbox's network namespace, whose eth0 has the pod's IP."""
    pod_id, config = pods("web")
    server = cri.run_container(pod_id, config, "server", [
        "sh", "-c", "mkdir -p /tmp/www && echo hello-from-the-server > /tmp/www/index.html"
        " && exec httpd -f -p 127.0.0.1:8080 -h /tmp/www"])
    client = cri.run_container(pod_id, config, "client", ["sleep", "300"])

    def fetched():
        r = cri.exec_sync(client, ["wget", "-qO-", "http://127.0.0.1:8080/"])
        return r.stdout.decode() if r.exit_code == 0 else None

    assert wait_for(fetched, timeout=20, what="the server to answer") == "hello-from-the-server\n"
    pause = json.loads(cri.pod_status(pod_id).info["info"])["pid"]
    assert ns_inode(pid_of(cri, server), "net") == ns_inode(pid_of(cri, client), "net") \
        == ns_inode(pause, "net")
    ip = cri.pod_status(pod_id).status.network.ip
    assert f"inet {ip}/24" in exec_ok(cri, client, ["ip", "-4", "addr", "show", "eth0"])


def test_pid_namespace_is_shared_on_request(cri, pods):
    """NamespaceMode POD for pid (a pod's shareProcessNamespace): the containers see each
    other's processes and the pause process as pid 1. CONTAINER (the default): each
    container's own process is its pid 1."""
    pod_id, config = pods("shared-pids", pid=cri.pb.POD)
    cri.run_container(pod_id, config, "sleeper", ["sleep", "1234"])
    looker = cri.run_container(pod_id, config, "looker", ["sleep", "300"])
    ps = exec_ok(cri, looker, ["ps", "-o", "pid,args"])
    assert re.search(r"^\s*1\s+/pause$", ps, re.M), ps
    assert "sleep 1234" in ps, ps

    pod_id, config = pods("own-pids")
    cri.run_container(pod_id, config, "sleeper", ["sleep", "1234"])
    looker = cri.run_container(pod_id, config, "looker", ["sleep", "300"])
    ps = exec_ok(cri, looker, ["ps", "-o", "pid,args"])
    assert re.search(r"^\s*1\s+sleep 300$", ps, re.M), ps
    assert "sleep 1234" not in ps and "/pause" not in ps, ps


def test_memory_limit_from_the_container_config_oom_kills(cri, pods):
    """linux.resources.memory_limit_in_bytes reaches the container's cgroup; an
    allocation past it kills the container, reported as the kubelet expects: exit code
    137, reason OOMKilled."""
    pod_id, config = pods("oom")
    resources = cri.pb.LinuxContainerResources(memory_limit_in_bytes=32 * MiB)
    cid = cri.run_container(pod_id, config, "hog",
                            ["sh", "-c", "sleep 1; exec tail /dev/zero"], resources=resources)
    memory = cgroup_dir(pid_of(cri, cid), "memory")
    assert open(f"{memory}/memory.limit_in_bytes").read().strip() == str(32 * MiB)
    status = cri.wait_exited(cid, timeout=60)
    assert status.exit_code == 137, status
    assert status.reason == "OOMKilled", status


def test_exec_sync_output_and_exit_code(cri, pods):
    pod_id, config = pods("execsync")
    cid = cri.run_container(pod_id, config, "box", ["sleep", "300"])
    r = cri.exec_sync(cid, ["sh", "-c", "echo out $(hostname); echo err >&2; "
                           "tr '\\0' ' ' < /proc/1/cmdline; exit 3"])
    assert r.exit_code == 3
    assert r.stdout.decode() == "out execsync\nsleep 300 "
    assert r.stderr.decode() == "err\n"


def test_streaming_exec_through_the_cri_streaming_server(cri, pods):
    """Exec returns a URL of the CRI streaming server; the client's streams run over it
    (websocket, v4.channel.k8s.io): stdin in, stdout and stderr out, the exit status in
    the status channel."""
    pod_id, config = pods("stream")
    cid = cri.run_container(pod_id, config, "box", ["sleep", "300"])
    url = cri.exec_url(cid, ["sh", "-c", "read line; echo got $line in $(hostname); "
                                         "echo to-stderr >&2; exit 5"], stdin=True)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/exec/\S+", url), url
    out, err, status = cri.stream_exec(url, stdin=b"ping\n")
    assert out == b"got ping in stream\n" and err == b"to-stderr\n"
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode", status
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]

    out, err, status = cri.stream_exec(cri.exec_url(cid, ["echo", "fine"]))
    assert (out, err, status["status"]) == (b"fine\n", b"", "Success")


def test_streaming_exec_with_a_terminal(cri, pods):
    """`kubectl exec -it`: a shell on a pseudo-terminal, typed to over stdin. (A terminal
    without stdin loses a short command's output with runc as well: containerd 1.6 may
    close the stream before the shim copied it; tried here, so not tested.)"""
    pod_id, config = pods("stream-tty")
    cid = cri.run_container(pod_id, config, "box", ["sleep", "300"])
    url = cri.exec_url(cid, ["sh"], stdin=True, tty=True)
    out, _, status = cri.stream_exec(url, stdin=b"tty; echo answer=$((6 * 7)); exit 6\r")
    assert re.search(rb"^/dev/pts/\d+\r$", out, re.M) and b"answer=42\r\n" in out, out
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "6"}], status


def test_container_exiting_non_zero_is_reported(cri, pods):
    pod_id, config = pods("fails")
    cid = cri.run_container(pod_id, config, "fails", ["sh", "-c", "echo bye; exit 3"])
    status = cri.wait_exited(cid)
    assert status.exit_code == 3 and status.reason == "Error", status
    # (containerd stamps started_at when the start call returns, which a process this
    # short may outlive by a millisecond: finished_at is only checked against created_at)
    assert status.finished_at > status.created_at > 0
    assert "bye" in open(status.log_path).read()


def test_restart_removes_and_creates_again_in_the_same_pod(cri, pods):
    """A kubelet restarts a container by removing it and creating attempt + 1 in the same
    sandbox: the new one runs in the pod's namespaces, the old one is gone."""
    pod_id, config = pods("restart")
    first = cri.run_container(pod_id, config, "app", ["sh", "-c", "trap 'exit 7' TERM; "
                                                     "while true; do sleep 0.1; done"])
    net = ns_inode(pid_of(cri, first), "net")
    cri.stop_container(first, timeout=10)
    status = cri.wait_exited(first)
    assert status.exit_code == 7, status  # SIGTERM reached the shell's trap
    cri.remove_container(first)
    second = cri.run_container(pod_id, config, "app", ["sleep", "300"], attempt=1)
    status = cri.container_status(second).status
    assert status.state == cri.pb.CONTAINER_RUNNING and status.metadata.attempt == 1
    assert ns_inode(pid_of(cri, second), "net") == net
    assert [c.id for c in cri.list_containers(pod_id)] == [second]
    with pytest.raises(grpc.RpcError) as gone:
        cri.container_status(first)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_update_container_resources_changes_the_cgroup(cri, pods):
    """UpdateContainerResources goes to the shim's update, `vessel update --resources -`:
    the container's cgroup has the new limits."""
    pod_id, config = pods("update")
    cid = cri.run_container(pod_id, config, "box", ["sleep", "300"],
                            resources=cri.pb.LinuxContainerResources(
                                memory_limit_in_bytes=64 * MiB, cpu_shares=512))
    pid = pid_of(cri, cid)
    memory, cpu = cgroup_dir(pid, "memory"), cgroup_dir(pid, "cpu")
    assert open(f"{memory}/memory.limit_in_bytes").read().strip() == str(64 * MiB)
    assert open(f"{cpu}/cpu.shares").read().strip() == "512"
    cri.update_resources(cid, cri.pb.LinuxContainerResources(
        memory_limit_in_bytes=96 * MiB, cpu_shares=256, cpu_period=100000, cpu_quota=50000))
    assert open(f"{memory}/memory.limit_in_bytes").read().strip() == str(96 * MiB)
    assert open(f"{cpu}/cpu.shares").read().strip() == "256"
    assert open(f"{cpu}/cpu.cfs_quota_us").read().strip() == "50000"
    assert open(f"{cpu}/cpu.cfs_period_us").read().strip() == "100000"


def test_container_stats(cri, pods):
    """ContainerStats (the kubelet's summary API) reads the container's cgroup: CPU time
    a busy loop used, memory the container holds."""
    pod_id, config = pods("stats")
    cid = cri.run_container(pod_id, config, "busy", [
        "sh", "-c", "a=$(head -c 8388608 /dev/zero | tr '\\0' x); "
        "i=0; while [ $i -lt 200000 ]; do i=$((i + 1)); done; echo done; sleep 300"])
    wait_for(lambda: "done" in open(cri.container_status(cid).status.log_path).read(),
             timeout=60, what="the busy loop to end")
    stats = cri.container_stats(cid)
    assert stats.attributes.id == cid and stats.attributes.metadata.name == "busy"
    assert stats.cpu.usage_core_nano_seconds.value > 50_000_000, stats.cpu  # > 50 ms
    assert stats.memory.working_set_bytes.value > 0, stats.memory
    listed = cri.runtime.ListContainerStats(cri.pb.ListContainerStatsRequest(
        filter=cri.pb.ContainerStatsFilter(pod_sandbox_id=pod_id)), timeout=60).stats
    assert [s.attributes.id for s in listed] == [cid]


def test_list_containers(cri, pods):
    pod_id, config = pods("list")
    running = cri.run_container(pod_id, config, "runs", ["sleep", "300"])
    exited = cri.run_container(pod_id, config, "exits", ["true"])
    cri.wait_exited(exited)
    created = cri.create_container(pod_id, config,
                                   cri.container_config("waits", ["true"], config))
    states = {c.metadata.name: (c.id, c.state, c.pod_sandbox_id)
              for c in cri.list_containers(pod_id)}
    assert states == {"runs": (running, cri.pb.CONTAINER_RUNNING, pod_id),
                      "exits": (exited, cri.pb.CONTAINER_EXITED, pod_id),
                      "waits": (created, cri.pb.CONTAINER_CREATED, pod_id)}
    only_running = cri.runtime.ListContainers(cri.pb.ListContainersRequest(
        filter=cri.pb.ContainerFilter(pod_sandbox_id=pod_id, state=cri.pb.ContainerStateValue(
            state=cri.pb.CONTAINER_RUNNING))), timeout=60).containers
    assert [c.id for c in only_running] == [running]


def test_pod_teardown_leaves_nothing(cri):
    """StopPodSandbox + RemovePodSandbox of a pod with two containers: no process, cgroup,
    mount or network namespace of it is left, and vessel has no state of it."""
    config = cri.pod_config("teardown")
    pod_id = cri.run_pod(config)
    cids = [cri.run_container(pod_id, config, name, ["sleep", "300"])
            for name in ("one", "two")]
    pids = [pid_of(cri, cid) for cid in cids]
    pids.append(json.loads(cri.pod_status(pod_id).info["info"])["pid"])
    netns = json.loads(cri.pod_status(pod_id).info["info"])["runtimeSpec"]["linux"][
        "namespaces"]
    netns_path = next(ns["path"] for ns in netns if ns["type"] == "network")
    assert os.path.exists(netns_path)
    assert cri.leftovers(), "the pod's cgroups, mounts and netns should be seen while it runs"

    cri.remove_pod(pod_id)
    assert [p for p in pids if os.path.exists(f"/proc/{p}")] == []
    assert cri.leftovers() == []
    assert not os.path.exists(netns_path)
    assert [p for i in [pod_id, *cids] for p in processes_naming(i)] == [], \
        "a shim or runtime process of the pod is left"
    state_root = cri.work / "vessel" / K8S_NAMESPACE
    assert not set(os.listdir(state_root)) & {pod_id, *cids}
    assert pod_id not in [p.id for p in cri.list_pods()]
