#!/usr/bin/env bash
# images.sh: `vessel image load` vs `podman load` of the same archives, alternating, in
# one run (issue 12 §6, its load half; the networked start needs the engine and networks).
#
# The image: podman builds it (vessel as its runtime, no registry needed) from a
# `podman import` of the busybox test rootfs, with layers of random bytes (incompressible),
# zeros (compressible) and many small files: about SIZE_MB MiB in all. Saved as an
# oci-archive (gzip layers) and, when this podman can, as an OCI layout with zstd layers
# (`podman push --compression-format zstd IMAGE oci:DIR`).
#
# Each round loads every archive once with each tool into an empty store: vessel into a
# fresh `--store`, podman into its private storage after `podman rmi -a`. The order of
# the tools alternates every round. Prints the median per tool and archive and the ratio
# vessel/podman (target: <= 0.5). vessel keeps no layer blobs, podman does.
#
# Usage: sudo bench/images.sh
# Env:   VESSEL=build/vessel  ROUNDS=5  SIZE_MB=200
set -euo pipefail
shopt -s inherit_errexit # a failed load inside $(...) stops the script
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VESSEL=${VESSEL:-$ROOT/build/vessel}
ROUNDS=${ROUNDS:-5}
SIZE_MB=${SIZE_MB:-200}

die() {
	echo "images.sh: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root (podman's storage, overlay mounts)"
[ -x "$VESSEL" ] || die "no vessel at $VESSEL (make vessel)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number"
[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "SIZE_MB must be a positive number"
command -v podman >/dev/null || die "podman missing (scripts/deps.sh clients)"

work=$(mktemp -d /tmp/vessel-bench-images.XXXXXX)
podman_env() {
	CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf "$@"
}
cleanup() {
	podman_env podman rmi -a -f >/dev/null 2>&1 || true
	podman_env podman system reset -f >/dev/null 2>&1 || true
	grep -F " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# podman's private configuration, as tests/integration/clients.py writes it
mkdir -p "$work/networks"
for f in containers.conf storage.conf; do
	sed "s#\$work#$work#g" "$ROOT/tests/integration/clients/$f" >"$work/$f"
done

echo "[images] building the image (about $SIZE_MB MiB) with podman" >&2
VESSEL=$VESSEL "$ROOT/scripts/mkbundle.sh" "$work/bundle" >/dev/null
tar -C "$work/bundle/rootfs" -cf "$work/base.tar" .
podman_env podman import --change "CMD /bin/sh" "$work/base.tar" localhost/bench-base:1 >/dev/null
third=$((SIZE_MB / 3))
mkdir -p "$work/ctx"
cat >"$work/ctx/Containerfile" <<EOF
FROM localhost/bench-base:1
RUN head -c $((third * 1048576)) /dev/urandom > /random
RUN head -c $((third * 1048576)) /dev/zero > /zeros
RUN mkdir /many && for i in \$(seq 1 5000); do head -c 4096 /dev/urandom > /many/f\$i; done
RUN head -c $((third * 1048576 - 5000 * 4096)) /dev/urandom > /more
EOF
podman_env podman --runtime "$VESSEL" build -q --network none -t localhost/bench-image:1 \
	"$work/ctx" >/dev/null 2>"$work/build.log" || {
	tail -20 "$work/build.log" >&2
	die "podman build failed"
}

declare -A archive
podman_env podman save -q --format oci-archive -o "$work/image-gzip.tar" localhost/bench-image:1
archive[gzip]=$work/image-gzip.tar
# zstd: pushed to an OCI layout, then tarred, so both tools read the same oci-archive
# (podman load takes a layout directory only by a lowercase reference)
if podman_env podman push -q --compression-format zstd localhost/bench-image:1 \
	"oci:$work/image-zstd:bench" >/dev/null 2>&1; then
	tar -C "$work/image-zstd" -cf "$work/image-zstd.tar" .
	archive[zstd]=$work/image-zstd.tar
fi
podman_env podman rmi -a -f >/dev/null

now_ms() { echo $(($(date +%s%N) / 1000000)); }
declare -A times
load_vessel() {
	rm -rf "$work/store"
	local t0 t1
	t0=$(now_ms)
	"$VESSEL" image load --store "$work/store" "$1" >/dev/null
	t1=$(now_ms)
	echo $((t1 - t0))
}
load_podman() {
	podman_env podman rmi -a -f >/dev/null 2>&1 || true
	local t0 t1
	t0=$(now_ms)
	podman_env podman load -q -i "$1" >/dev/null
	t1=$(now_ms)
	echo $((t1 - t0))
}

for ((r = 0; r < ROUNDS; r++)); do
	for kind in "${!archive[@]}"; do
		if ((r % 2 == 0)); then order="vessel podman"; else order="podman vessel"; fi
		for tool in $order; do
			ms=$("load_$tool" "${archive[$kind]}")
			times[$tool.$kind]+="$ms "
		done
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-8s %-12s %-12s %s\n' archive "vessel ms" "podman ms" "vessel/podman"
for kind in "${!archive[@]}"; do
	v=$(median <<<"${times[vessel.$kind]}")
	p=$(median <<<"${times[podman.$kind]}")
	printf '%-8s %-12s %-12s %s\n' "$kind" "$v" "$p" "$(awk -v v="$v" -v p="$p" 'BEGIN {printf "%.2f", v / p}')"
done
echo "(medians of $ROUNDS alternating rounds; archive sizes: $(du -sh "${archive[@]}" | awk '{print $1}' | tr '\n' ' '))"
