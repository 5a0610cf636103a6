#!/usr/bin/env bash
# engine.sh: the start of a networked container, `vessel container run --rm` vs `podman run
# --rm`, each on its default network (vessel's CNI bridge; podman's netavark bridge),
# alternating, in one run (issue 12 §6, its networked-start half; images.sh is the load
# half).
#
# The image: the busybox test rootfs, `podman import`ed, saved as an oci-archive and
# loaded into a vessel store of the bench's own. podman runs with vessel as its runtime
# (--runtime), so that the runtime underneath is the same and the figure is the engines'
# and their network stacks'. Every run is a new container: a new netns, veth, address
# and rules, the overlay root mounted, /bin/true run, all of it torn down (--rm).
#
# Everything runs in a network and mount namespace of the bench's own (unshare): the
# bridges, veths and iptables rules of both never touch the host's.
#
# Prints the median, min and p90 per engine and the ratio vessel/podman (target <= 0.5).
# With BEFORE=BINARY a second vessel (an older build, say) runs in the same rounds on the
# same store, as a row of its own: a before/after comparison that the machine's load
# changes alike.
#
# Usage: sudo bench/engine.sh
# Env:   VESSEL=build/vessel  ROUNDS=20  WARMUP=2  BEFORE=(none)
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VESSEL=${VESSEL:-$ROOT/build/vessel}
ROUNDS=${ROUNDS:-20}
WARMUP=${WARMUP:-2}
BEFORE=${BEFORE:-}

die() {
	echo "engine.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root (namespaces, overlay mounts, iptables)"
[ -x "$VESSEL" ] || die "no vessel at $VESSEL (make vessel)"
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || die "no vessel at BEFORE=$BEFORE"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a number"
command -v podman >/dev/null || die "podman missing (scripts/deps.sh clients)"
[ -x /usr/lib/cni/bridge ] || die "containernetworking-plugins missing (scripts/deps.sh)"

# the rest in namespaces of our own
if [ -z "${ENGINE_BENCH_INSIDE:-}" ]; then
	VESSEL=$(realpath "$VESSEL")
	[ -z "$BEFORE" ] || BEFORE=$(realpath "$BEFORE")
	exec env ENGINE_BENCH_INSIDE=1 VESSEL="$VESSEL" BEFORE="$BEFORE" \
		unshare -n -m --propagation private \
		"$0" "$@"
fi
ip link set lo up

work=$(mktemp -d /tmp/vessel-bench-engine.XXXXXX)
podman_env() {
	CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf "$@"
}
cleanup() {
	podman_env podman rm -a -f >/dev/null 2>&1 || true
	podman_env podman system reset -f >/dev/null 2>&1 || true
	# (no mount left is grep's status 1: not a reason to keep $work)
	{ grep -F " $work/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/networks"
for f in containers.conf storage.conf; do
	sed "s#\$work#$work#g" "$ROOT/tests/integration/clients/$f" >"$work/$f"
done

echo "[engine] the image: busybox rootfs, imported by podman, loaded by vessel" >&2
VESSEL=$VESSEL "$ROOT/scripts/mkbundle.sh" "$work/bundle" >/dev/null
tar -C "$work/bundle/rootfs" -cf "$work/base.tar" .
podman_env podman import -q --change "CMD /bin/sh" "$work/base.tar" localhost/bench-engine:1 >/dev/null
podman_env podman save -q --format oci-archive -o "$work/image.tar" localhost/bench-engine:1
"$VESSEL" image load --store "$work/store" --name localhost/bench-engine:1 "$work/image.tar" \
	>/dev/null

now_us() { echo $(($(date +%s%N) / 1000)); }
run_vessel() {
	"$VESSEL" --root "$work/state" container --store "$work/store" run --rm \
		localhost/bench-engine:1 /bin/true
}
run_before() {
	"$BEFORE" --root "$work/state-before" container --store "$work/store" run --rm \
		localhost/bench-engine:1 /bin/true
}
run_podman() {
	podman_env podman --runtime "$VESSEL" run --rm localhost/bench-engine:1 /bin/true
}
tools=(vessel podman)
[ -z "$BEFORE" ] || tools=(vessel before podman)
declare -A times
for ((r = 0; r < WARMUP + ROUNDS; r++)); do
	# the order rotates by one each round: no engine always runs first or after another
	order=()
	for ((i = 0; i < ${#tools[@]}; i++)); do
		order+=("${tools[(r + i) % ${#tools[@]}]}")
	done
	for tool in "${order[@]}"; do
		t0=$(now_us)
		"run_$tool" >/dev/null || die "$tool run failed"
		t1=$(now_us)
		((r < WARMUP)) || times[$tool]+="$(((t1 - t0) / 1000)) "
	done
done

stat_line() { # median min p90 of the ms values on stdin
	tr ' ' '\n' | grep -v '^$' | sort -n |
		awk '{a[NR]=$1} END {print a[int((NR+1)/2)], a[1], a[int(NR*0.9+0.999)]}'
}
declare -A med
printf '%-8s %-8s %-8s %-8s\n' engine "med ms" "min ms" "p90 ms"
for tool in "${tools[@]}"; do
	read -r m mn p90 <<<"$(stat_line <<<"${times[$tool]}")"
	med[$tool]=$m
	printf '%-8s %-8s %-8s %-8s\n' "$tool" "$m" "$mn" "$p90"
done
ratio() { awk -v v="$1" -v p="$2" 'BEGIN {printf "%.2f", v / p}'; }
echo "vessel/podman (median): $(ratio "${med[vessel]}" "${med[podman]}")"
[ -z "$BEFORE" ] || echo "before/podman (median): $(ratio "${med[before]}" "${med[podman]}")" \
	"(before: $BEFORE); vessel/before: $(ratio "${med[vessel]}" "${med[before]}")"
echo "($ROUNDS alternating rounds after $WARMUP warm-up; both on their default bridge" \
	"network, runtime $VESSEL)"
