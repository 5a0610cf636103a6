#!/usr/bin/env bash
# vm-containers.sh: a VM-isolated container's start and memory, in one run (issue 13's
# bench). `podman run --rm IMAGE true` with --runtime vessel (a plain container), vessel-vm
# (the same binary by that name: the container in its own microVM, docs/vm-containers.md)
# and crun (podman's default runtime, the peer), alternating in rounds. Prints the median,
# min and max per runtime, the ratios vessel-vm/vessel and vessel/crun, and the
# VM-isolated container's memory on the host: the VMM's and virtiofsd's VmRSS while a
# `podman run -d ... sleep` container runs. See bench/README.md ("VM-isolated containers").
#
# Usage: bench/vm-containers.sh      (as root; `make vessel` builds build/vessel first)
# Env:   VESSEL=build/vessel  ROUNDS=5  WARMUP=1  SETTLE=0.1  RSS_WAIT=5  BOOT_TIMEOUT=300
# Where this machine has no hardware-assisted /dev/kvm (none, or kvm_pvm) it re-runs itself
# inside the emulated KVM host (tests/kvmhost/run), as tests/kvm.sh does: figures there are
# QEMU TCG's, to be compared as ratios only.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME's decimal point

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATES=$ROOT/tests/integration/clients
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-1}
SETTLE=${SETTLE:-0.1}
RSS_WAIT=${RSS_WAIT:-5}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
IMAGE=localhost/vessel-bench:vmc
# issue 13's targets
TARGET_START_RATIO=3
TARGET_OVERHEAD_MIB=20

. "$ROOT/bench/lib.sh"
MS_DIGITS=0
whole ROUNDS WARMUP RSS_WAIT BOOT_TIMEOUT
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be at least 1"
seconds SETTLE
[ "$(id -u)" = 0 ] || die "must run as root (podman as root)"

vessel=$(realpath -e "${VESSEL:-$ROOT/build/vessel}" 2>/dev/null) ||
	die "no vessel at ${VESSEL:-build/vessel} (make vessel)"

VESSEL=$vessel
bench_kvm_host $((600 + (ROUNDS + WARMUP + 2) * BOOT_TIMEOUT)) VESSEL ROUNDS WARMUP SETTLE RSS_WAIT \
	BOOT_TIMEOUT

for tool in podman conmon crun; do
	command -v $tool >/dev/null || die "$tool not installed (scripts/deps.sh clients bench)"
done
[ -x /usr/lib/qemu/virtiofsd ] || die "virtiofsd missing (/usr/lib/qemu/virtiofsd: scripts/deps.sh)"

# A short path on a disk filesystem: conmon's attach socket lives below podman's tmp_dir
# (108-byte limit), and podman's overlay storage can't sit on the emulated host's overlay
# /tmp (its TMPDIR is an ext4 disk).
work=$(mktemp -d "${TMPDIR:-/tmp}/vvm.XXXXXX")
RUNTIMES=(vessel vessel-vm crun)
declare -A BIN=([vessel]=$vessel [vessel-vm]=$work/bin/vessel-vm [crun]=$(command -v crun))
mkdir -p "$work/bin"
ln -s "$vessel" "${BIN[vessel-vm]}"

# ------------------------------------------------------------------------ cleanup
cleanup() {
	set +e
	if [ -e "$work/containers.conf" ]; then
		pod rm --all --force --time 0 >/dev/null 2>&1
		pod rmi --all --force >/dev/null 2>&1
	fi
	for p in $(pids_naming "$work"); do kill -9 "$p" 2>/dev/null; done
	unmount_work
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- podman and image
render() { sed -e "s|\$work|$work|g" "$TEMPLATES/$1" >"$work/$1"; }
mkdir -p "$work/networks"
render containers.conf
render storage.conf
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf
pod() { (cd "$work" && podman "$@"); } # conmon drops an `oom` file in its cwd
pod_t() { (cd "$work" && timeout "$BOOT_TIMEOUT" podman "$@"); }

log "image: busybox rootfs (scripts/mkbundle.sh) imported into podman"
VESSEL=$vessel "$ROOT/scripts/mkbundle.sh" "$work/bundle" >/dev/null || die "mkbundle failed"
tar -C "$work/bundle/rootfs" -c . | pod import --change "CMD /bin/sh" - "$IMAGE" >/dev/null 2>"$work/import.err" ||
	die "podman import: $(tail -1 "$work/import.err")"

# -------------------------------------------------------------------------- helpers
run_one() { # runtime; one container to completion, errors to $work/$rt.err
	local rt=$1
	pod_t --runtime "${BIN[$rt]}" run --rm --network none "$IMAGE" true \
		</dev/null >/dev/null 2>>"$work/$rt.err"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# -------------------------------------------------------------------------- smoke
# One untimed run each: a runtime that can't run the image gets a FAILED row, the others
# are still measured.
declare -A OK VER FAILS
for rt in "${RUNTIMES[@]}"; do
	VER[$rt]=$("${BIN[$rt]}" --version 2>/dev/null | head -1 | sed 's/^[a-z-]* version //')
	: >"$work/$rt.err"
	: >"$work/$rt.lat"
	OK[$rt]=0
	FAILS[$rt]=0
	log "smoke run: $rt"
	if run_one "$rt"; then
		OK[$rt]=1
	else
		log "$rt failed: $(tail -1 "$work/$rt.err")"
	fi
	settle_clients 10
done

busy=$(cpu_busy_pct)
[ "$busy" -le 10 ] || log "WARNING: ${busy}% CPU busy before the start: every figure is inflated"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ alternating rounds
# Each round runs every runtime once; the order rotates by one per round, so no runtime is
# always first; each timed run follows the same SETTLE pause after the last one's teardown.
log "$WARMUP warm-up + $ROUNDS rounds of ${RUNTIMES[*]}"
for ((r = 0; r < WARMUP + ROUNDS; r++)); do
	for ((k = 0; k < ${#RUNTIMES[@]}; k++)); do
		rt=${RUNTIMES[(r + k) % ${#RUNTIMES[@]}]}
		[ "${OK[$rt]}" = 1 ] || continue
		settle_clients 10
		sleep "$SETTLE"
		t0=$EPOCHREALTIME
		if run_one "$rt"; then
			t1=$EPOCHREALTIME
			((r < WARMUP)) || echo $(($(usec "$t1") - $(usec "$t0"))) >>"$work/$rt.lat"
		else
			FAILS[$rt]=$((FAILS[$rt] + 1))
		fi
	done
done
settle_clients 10

# ------------------------------------------------------------ memory of a VM container
# A detached VM container that sleeps: its pid (podman's State.Pid) is the VMM process,
# virtiofsd its child (with the QEMU C virtiofsd's sandbox, a parent and a child). After
# RSS_WAIT seconds (the guest settled) each process's /proc/PID/status is read. The guest's
# RAM is a shared memfd (vhost-user needs it), so the pages the guest touched are in the
# VMM's RssShmem, and those virtiofsd touched are in its RssShmem as well.
declare -A RSS=([VmRSS]=0 [RssAnon]=0 [RssFile]=0 [RssShmem]=0)
rss_procs=""
rss_note=""
descendants() { # pid and all its descendants
	local c
	echo "$1"
	for c in $(pgrep -P "$1"); do descendants "$c"; done
}
if [ "${OK[vessel-vm]}" = 1 ]; then
	log "memory: podman run -d ... sleep on vessel-vm, read after ${RSS_WAIT}s"
	if pod_t --runtime "${BIN[vessel-vm]}" run -d --name vvm-rss \
		--network none "$IMAGE" sleep 100000 </dev/null >/dev/null 2>>"$work/vessel-vm.err"; then
		vmm=$(pod inspect --format '{{.State.Pid}}' vvm-rss)
		sleep "$RSS_WAIT"
		for p in $(descendants "$vmm"); do
			[ -r "/proc/$p/status" ] || continue
			name=$(awk '/^Name:/ {print $2}' "/proc/$p/status")
			line="$name($p)"
			for f in VmRSS RssAnon RssFile RssShmem; do
				kib=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status")
				RSS[$f]=$((RSS[$f] + ${kib:-0}))
				line+=" $f $(mib "${kib:-0}")"
			done
			rss_procs+="  $line MiB"$'\n'
		done
		pod rm --force --time 0 vvm-rss >/dev/null 2>&1 || true
		settle_clients 10
	else
		rss_note="FAILED: $(tail -1 "$work/vessel-vm.err")"
	fi
fi

# --------------------------------------------------------------------------- report
declare -A MED MIN MAX
for rt in "${RUNTIMES[@]}"; do
	f=$work/$rt.lat
	MED[$rt]=$(median <"$f")
	MIN[$rt]=$(sort -n "$f" | head -1)
	MAX[$rt]=$(sort -n "$f" | tail -1)
done

kvm=kvm_amd
[ -d /sys/module/kvm_amd ] || kvm=kvm_intel
echo
echo "# VM-isolated containers through podman, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) CPUs, $kvm"
[ "${VESSEL_KVMHOST:-}" != inside ] ||
	echo "inside the emulated KVM host (tests/kvmhost: QEMU TCG, nested SVM): compare ratios only"
echo "podman $(podman --version | awk '{print $3}') (conmon $(conmon --version | awk 'NR == 1 {print $3}')," \
	"$(awk '/^driver/ {print $3}' "$work/storage.conf" | tr -d '"') storage, --network none);" \
	"virtiofsd $(/usr/lib/qemu/virtiofsd --version 2>/dev/null | awk 'NR == 1 {print $3}')"
echo "image: busybox-static rootfs (scripts/mkbundle.sh), process true; vessel-vm: a symlink to $vessel," \
	"guest $(cat "${VESSEL_IMAGES:-$(dirname "$vessel")/../images/out}/kernel-version" 2>/dev/null || echo '?'), 256 MiB, 1 vCPU (no limits)"
echo "before: ${busy}% CPU busy over 1 s, loadavg $load_before"
echo
printf '| %-9s | %-14s | %10s | %8s | %8s | %5s |\n' runtime version "median ms" "min ms" "max ms" fails
echo "| --------- | -------------- | ---------: | -------: | -------: | ----: |"
for rt in "${RUNTIMES[@]}"; do
	if [ "${OK[$rt]}" != 1 ]; then
		printf '| %-9s | %-14s | FAILED: %s\n' "$rt" "${VER[$rt]:0:14}" "$(tail -1 "$work/$rt.err")"
		continue
	fi
	printf '| %-9s | %-14s | %10s | %8s | %8s | %5s |\n' "$rt" "${VER[$rt]:0:14}" \
		"$(ms "${MED[$rt]}")" "$(ms "${MIN[$rt]}")" "$(ms "${MAX[$rt]}")" "${FAILS[$rt]}"
done
echo
echo "median of $ROUNDS alternating rounds after $WARMUP warm-up; each run: \`podman run --rm\`" \
	"whole (fork+exec+wait, bash EPOCHREALTIME), ${SETTLE}s pause after the last run's teardown"
xratio() { local q; q=$(ratio "$1" "$2"); [ "$q" = n/a ] && echo "$q" || echo "${q}x"; }
echo "vessel-vm/vessel $(xratio "${MED[vessel-vm]}" "${MED[vessel]}")," \
	"vessel/crun $(xratio "${MED[vessel]}" "${MED[crun]}")," \
	"vessel-vm/crun $(xratio "${MED[vessel-vm]}" "${MED[crun]}")"
echo
if [ -n "$rss_procs" ]; then
	echo "memory of a running VM container (host processes: the VMM and its virtiofsd), ${RSS_WAIT}s after podman run -d:"
	printf '%s' "$rss_procs"
	own=$((RSS[RssAnon] + RSS[RssFile]))
	echo "  sum: VmRSS $(mib "${RSS[VmRSS]}") MiB = own (anon + file) $(mib $own) MiB" \
		"+ guest RAM touched (shmem, the memfd; virtiofsd's share counted again) $(mib "${RSS[RssShmem]}") MiB"
else
	echo "memory of a running VM container: ${rss_note:-not measured (vessel-vm failed)}"
fi
echo
verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT met"; fi; }
if [ "${OK[vessel]}${OK[vessel-vm]}" = 11 ]; then
	q=$(ratio "${MED[vessel-vm]}" "${MED[vessel]}")
	echo "target: vessel-vm start <= ${TARGET_START_RATIO}x vessel's:" \
		"$(verdict "$(awk -v q="$q" -v t=$TARGET_START_RATIO 'BEGIN { print (q <= t) }')") (${q}x)"
else
	echo "target: vessel-vm start <= ${TARGET_START_RATIO}x vessel's: not measured (a row failed)"
fi
if [ -n "$rss_procs" ]; then
	all=$(mib "${RSS[VmRSS]}") own=$(mib "$own")
	echo "target: overhead <= ${TARGET_OVERHEAD_MIB} MiB: VmRSS sum $(verdict "$(awk -v a="$all" -v t=$TARGET_OVERHEAD_MIB 'BEGIN { print (a <= t) }')")" \
		"(${all} MiB); without the guest's RAM $(verdict "$(awk -v a="$own" -v t=$TARGET_OVERHEAD_MIB 'BEGIN { print (a <= t) }')") (${own} MiB)"
else
	echo "target: overhead <= ${TARGET_OVERHEAD_MIB} MiB: not measured"
fi

# ------------------------------------------------------------------ nothing left behind
ids=$(pod ps --all --quiet 2>/dev/null | tr '\n' ' ')
cleanup
trap - EXIT
left=""
[ -z "$ids" ] || left+=" podman containers: $ids"
[ ! -e "$work" ] || left+=" $work"
awk -v w="$work" '$5 == w || index($5, w "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo &&
	left+=" mounts under $work"
[ -z "$(pids_naming "$work")" ] || left+=" processes naming $work"
echo
if [ -n "$left" ]; then
	echo "left behind:$left"
	exit 1
fi
echo "left behind: no containers, mounts or processes"
for rt in "${RUNTIMES[@]}"; do [ "${OK[$rt]}" = 1 ] || exit 1; done
