#!/usr/bin/env bash
# cri.sh: pod start through containerd's CRI plugin, as a kubelet starts a pod, with vessel
# and with runc as the RuntimeClass handler, alternating in one run: RunPodSandbox (pause
# container + CNI bridge network) + CreateContainer + StartContainer of one busybox
# container. Prints medians per handler and phase, and the ratio vessel/runc against the
# target (<= 0.7x runc). See bench/README.md ("Through the CRI").
#
# Usage: bench/cri.sh            (as root; `make` builds build/vessel first)
# Env:   VESSEL=build/vessel  RUNC=/usr/sbin/runc  ROUNDS=20  WARMUP=2  SETTLE=0.1
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-20}
WARMUP=${WARMUP:-2}
SETTLE=${SETTLE:-0.1}

. "$ROOT/bench/lib.sh"

whole ROUNDS WARMUP
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be at least 1"
seconds SETTLE
[ "$(id -u)" = 0 ] || die "must run as root (containerd, CNI)"
for tool in containerd containerd-shim-runc-v2 ctr gcc; do
	command -v $tool >/dev/null || die "$tool not installed (scripts/deps.sh cri bench)"
done
[ -x /usr/lib/cni/bridge ] || die "CNI plugins not installed (scripts/deps.sh cri)"
/usr/bin/python3 -c 'import grpc, grpc_tools, websocket' 2>/dev/null ||
	die "python3-grpcio, python3-grpc-tools, python3-websocket needed (scripts/deps.sh cri)"

vessel=${VESSEL:-$ROOT/build/vessel}
vessel=$(realpath -m "$vessel")
[ -x "$vessel" ] || die "vessel not found at $vessel (run make)"
runc=$(realpath -m "${RUNC:-$(command -v runc || echo /usr/sbin/runc)}")
[ -x "$runc" ] || die "runc not found (scripts/deps.sh bench)"

# The measurement is the tests' CRI client (tests/integration/cri.py): the same daemon
# setup, pause image and kubelet calls, here timed. restrict_oom_score_adj is on for both
# handlers: runc fails every sandbox without it on a host whose root lacks
# CAP_SYS_RESOURCE, and both then do the same work.
cd "$ROOT/tests/integration"
exec /usr/bin/python3 - "$vessel" "$runc" "$ROUNDS" "$WARMUP" "$SETTLE" <<'EOF'
import statistics
import sys
import time

from cri import CriContainerd

vessel, runc, rounds, warmup, settle = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), float(sys.argv[5])
HANDLERS = ["vessel", "runc"]
PHASES = ["sandbox", "create", "start", "pod start"]


def pod_start(d, handler, n):
    """One pod as the kubelet starts it; its phases' wall times in ms. Removed after,
    untimed."""
    config = d.pod_config(f"bench-{handler}-{n}")
    t0 = time.perf_counter()
    pod = d.run_pod(config, handler=handler)
    t1 = time.perf_counter()
    cid = d.create_container(pod, config, d.container_config("app", ["sleep", "300"], config))
    t2 = time.perf_counter()
    d.start_container(cid)
    t3 = time.perf_counter()
    d.remove_pod(pod)
    return [(t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3]


d = CriContainerd(vessel, runc=runc, restrict_oom_score_adj=True)
problems = []
try:
    d.import_test_images()
    samples = {h: [] for h in HANDLERS}
    for r in range(warmup + rounds):
        order = HANDLERS if r % 2 == 0 else HANDLERS[::-1]
        for h in order:
            time.sleep(settle)
            phases = pod_start(d, h, r)
            if r >= warmup:
                samples[h].append(phases)
finally:
    problems = d.stop()

print(f"pod start through containerd 1.6's CRI (RunPodSandbox + CreateContainer + "
      f"StartContainer), {rounds} alternating rounds after {warmup} warm-up, ms")
print(f"{'handler':<8}" + "".join(f"{p + ' med':>16}" for p in PHASES) +
      f"{'pod start min':>16}{'max':>10}")
med = {}
for h in HANDLERS:
    cols = list(zip(*samples[h]))
    med[h] = [statistics.median(c) for c in cols]
    print(f"{h:<8}" + "".join(f"{m:16.1f}" for m in med[h]) +
          f"{min(cols[3]):16.1f}{max(cols[3]):10.1f}")
ratio = med["vessel"][3] / med["runc"][3]
print("vessel/runc per phase: " + ", ".join(
    f"{p} {med['vessel'][i] / med['runc'][i]:.2f}x" for i, p in enumerate(PHASES)))
print(f"target pod start <= 0.70x runc: {ratio:.2f}x, {'met' if ratio <= 0.7 else 'NOT met'}")
# runc leaves the pod-level cgroup directories it made (a kubelet owns and removes them);
# anything else left is a failure
problems = [p for p in problems if not (p.startswith("cgroup ") and "/pod" in p
                                        and p.rsplit("/", 1)[1].startswith("pod"))]
print("left behind: " + (", ".join(problems) if problems else
                         "no pods, processes, cgroups, mounts or netns"))
sys.exit(1 if problems else 0)
EOF
