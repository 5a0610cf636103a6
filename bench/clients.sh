#!/usr/bin/env bash
# clients.sh: vessel, crun and runc as the OCI runtime of real clients, side by side in one
# run: `podman run --rm IMAGE /bin/true` (podman --runtime) and `ctr run --rm IMAGE ID
# /bin/true` (containerd's runc shim, --runc-binary). Prints medians, ratios vessel/crun and
# vessel/runc per client, and whether vessel is no slower than crun through either client.
# See bench/README.md ("Through podman and containerd").
#
# Usage: bench/clients.sh            (as root; `make` builds build/vessel first)
# Env:   VESSEL=build/vessel  ROUNDS=20  WARMUP=2  SETTLE=0.1  NETWORK=none
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME's decimal point

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATES=$ROOT/tests/integration/clients
ROUNDS=${ROUNDS:-20}
WARMUP=${WARMUP:-2}
SETTLE=${SETTLE:-0.1}
NETWORK=${NETWORK:-none}
CG=/sys/fs/cgroup
IMAGE=localhost/vessel-bench:busybox

. "$ROOT/bench/lib.sh"
MS_DIGITS=1
whole ROUNDS WARMUP
[ "$ROUNDS" -ge 1 ] || die "ROUNDS must be at least 1"
seconds SETTLE
case "$NETWORK" in none | host) ;; *) die "NETWORK must be none or host (podman's --network)" ;; esac
[ "$(id -u)" = 0 ] || die "must run as root (podman and containerd as root)"
for tool in podman ctr containerd containerd-shim-runc-v2 conmon; do
	command -v $tool >/dev/null || die "$tool not installed (scripts/deps.sh clients)"
done

vessel=${VESSEL:-$ROOT/build/vessel}
case "$vessel" in */*) vessel=$(realpath -m "$vessel") ;; esac
vessel=$(command -v "$vessel") || die "vessel not found at ${VESSEL:-build/vessel} (run make)"
RUNTIMES=(vessel crun runc)
CLIENTS=(podman ctr)
declare -A BIN=([vessel]=$vessel [crun]=$(command -v crun || echo /usr/bin/crun)
	[runc]=$(command -v runc || echo /usr/sbin/runc))
for rt in crun runc; do [ -x "${BIN[$rt]}" ] || die "$rt not installed (scripts/deps.sh bench)"; done

# a short path: conmon's attach socket lives below podman's tmp_dir (108-byte limit)
work=$(mktemp -d /tmp/vcb.XXXXXX)
ns=vcb$$ # containerd namespace, and so the cgroup parent of ctr's containers
daemon_pid=""

# ---------------------------------------------------------------- crun's cgroup fix
# crun 1.8 refuses every container while cgroup2 on a hybrid host owns a controller (here
# hugetlb); mounting it as a v1 hierarchy moves it off cgroup2 (bench/container.sh, same
# way). Only around crun's runs. podman and containerd make their parent cgroups
# (libpod_parent, the ctr namespace) in that hierarchy too: they are removed before the
# unmount, or the hierarchy would outlive it and keep the controller.
fix_ctrls=""
fix_note="none needed"
fix_mounted=0
fix_failed=""
declare -A fix_made_dir=()
[ "$(stat -fc %T $CG)" = cgroup2fs ] || fix_ctrls=$(cat $CG/unified/cgroup.controllers 2>/dev/null || true)
[ -z "$fix_ctrls" ] ||
	fix_note="cgroup v1 mount of '$fix_ctrls' (off cgroup2) only around crun's runs"

fix_restored() {
	local c
	for c in $fix_ctrls; do grep -qw "$c" $CG/unified/cgroup.controllers || return 1; done
}

fix_on() {
	local c
	[ -n "$fix_ctrls" ] && [ $fix_mounted = 0 ] || return 0
	fix_mounted=1
	for c in $fix_ctrls; do
		[ -d "$CG/$c" ] || fix_made_dir[$c]=1
		mkdir -p "$CG/$c"
		mount -t cgroup -o "$c" cgroup "$CG/$c" 2>"$work/fix.err" && continue
		fix_failed="cannot mount cgroup v1 '$c' for crun: $(head -1 "$work/fix.err")"
		! grep -qw "$c" $CG/unified/cgroup.subtree_control ||
			fix_failed+=" ($c is in use on cgroup2: enabled in $CG/unified/cgroup.subtree_control)"
		log "$fix_failed"
		fix_off
		return 1
	done
}

fix_off() {
	local c i
	[ $fix_mounted = 1 ] || return 0
	settle_clients 5
	for ((i = 1; i <= 500; i++)); do
		for c in $fix_ctrls; do
			mountpoint -q "$CG/$c" || continue
			# the runtimes' and clients' cgroups here were all made in crun's window
			find "$CG/$c" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
			umount "$CG/$c"
		done
		fix_restored && break
		sleep 0.02
		# the kernel frees a v1 hierarchy only once it is unmounted with no child left
		# (asynchronously, after crun's cgroup is gone): remount now and then to clear it
		((i % 5)) || for c in $fix_ctrls; do mount -t cgroup -o "$c" cgroup "$CG/$c" 2>/dev/null || true; done
	done
	for c in $fix_ctrls; do
		! mountpoint -q "$CG/$c" || umount "$CG/$c"
		# podman, seeing a v1 hierarchy still alive, may have put a conmon `tasks` file in
		# the plain tmpfs directory: remove it with the directory the bench made
		[ "${fix_made_dir[$c]:-}" = 1 ] && [ -d "$CG/$c" ] || continue
		[ "$(stat -fc %T "$CG/$c")" != tmpfs ] || rm -r "${CG:?}/${c:?}"
	done
	fix_mounted=0
	fix_restored || log "WARNING: '$fix_ctrls' not yet back on cgroup2"
}

# ------------------------------------------------------------------------ cleanup
cleanup() {
	set +e
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		for id in $(ctr_ task ls -q 2>/dev/null); do
			ctr_ task kill -s SIGKILL "$id" >/dev/null 2>&1
			sleep 0.2
			ctr_ task delete --force "$id" >/dev/null 2>&1
		done
		for id in $(ctr_ container ls -q 2>/dev/null); do ctr_ container delete "$id" >/dev/null 2>&1; done
		ctr_ image remove "$IMAGE" >/dev/null 2>&1
		kill "$daemon_pid"
		for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$daemon_pid" 2>/dev/null
	fi
	for p in $(pids_naming "$work/containerd.sock"); do kill -9 "$p" 2>/dev/null; done
	if [ -e "$work/containers.conf" ]; then
		pod rm --all --force --time 0 >/dev/null 2>&1
		pod rmi --all --force >/dev/null 2>&1
	fi
	for p in $(pids_naming "$work"); do kill -9 "$p" 2>/dev/null; done
	fix_off
	find $CG -maxdepth 2 -mindepth 1 -type d -name "$ns" -exec rmdir {} + 2>/dev/null
	unmount_work
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- clients and image
render() { sed -e "s|\$work|$work|g" -e "s|\$vessel|$vessel|g" "$TEMPLATES/$1" >"$work/$1"; }
mkdir -p "$work/networks" "$work/fifo"
render containers.conf
render storage.conf
render containerd.toml
export CONTAINERS_CONF=$work/containers.conf CONTAINERS_STORAGE_CONF=$work/storage.conf

pod() { (cd "$work" && podman "$@"); } # conmon drops an `oom` file in its cwd
ctr_() { ctr --address "$work/containerd.sock" --namespace "$ns" "$@"; }

log "image: busybox rootfs (scripts/mkbundle.sh) imported into podman and containerd"
VESSEL=$vessel "$ROOT/scripts/mkbundle.sh" "$work/bundle" >/dev/null || die "mkbundle failed"
tar -C "$work/bundle/rootfs" -c . | pod import --change "CMD /bin/sh" - "$IMAGE" >/dev/null 2>"$work/import.err" ||
	die "podman import: $(tail -1 "$work/import.err")"
pod save --format docker-archive -o "$work/image.tar" "$IMAGE" 2>"$work/save.err" >/dev/null ||
	die "podman save: $(tail -1 "$work/save.err")"

containerd --config "$work/containerd.toml" </dev/null >"$work/containerd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
	[ -S "$work/containerd.sock" ] && ctr_ version >/dev/null 2>&1 && break
	kill -0 $daemon_pid 2>/dev/null || die "containerd exited: $(tail -3 "$work/containerd.log")"
	sleep 0.1
done
# a docker archive keeps podman's name: both clients run the same image by the same name
ctr_ image import "$work/image.tar" >/dev/null 2>"$work/ctr-import.err" ||
	die "ctr image import: $(tail -1 "$work/ctr-import.err")"
ctr_ image ls -q | grep -qx "$IMAGE" || die "ctr image import gave no $IMAGE: $(ctr_ image ls -q)"

# -------------------------------------------------------------------------- helpers
n_run=0
run_one() { # client runtime; one container to completion, errors to $work/$client-$rt.err
	local client=$1 rt=$2
	n_run=$((n_run + 1))
	case $client in
	podman)
		pod --runtime "${BIN[$rt]}" run --rm --network "$NETWORK" "$IMAGE" /bin/true \
			</dev/null >/dev/null 2>>"$work/$client-$rt.err"
		;;
	ctr)
		ctr_ run --rm --runc-binary "${BIN[$rt]}" --runc-root "$work/runtime-$rt" \
			--fifo-dir "$work/fifo" "$IMAGE" "b$rt$n_run" /bin/true \
			</dev/null >/dev/null 2>>"$work/$client-$rt.err"
		;;
	esac
}


# -------------------------------------------------------------------------- smoke
declare -A OK VER FAILS
fix_skips=0
for rt in "${RUNTIMES[@]}"; do
	VER[$rt]=$("${BIN[$rt]}" --version 2>/dev/null | head -1 | sed 's/^[a-z]* version //')
	for client in "${CLIENTS[@]}"; do
		: >"$work/$client-$rt.err"
		: >"$work/$client-$rt.lat"
		OK[$client-$rt]=0
		FAILS[$client-$rt]=0
	done
	if [ "$rt" = crun ] && ! fix_on; then
		for client in "${CLIENTS[@]}"; do echo "$fix_failed" >>"$work/$client-$rt.err"; done
		continue
	fi
	for client in "${CLIENTS[@]}"; do
		if run_one "$client" "$rt"; then
			OK[$client-$rt]=1
		else
			log "$client with $rt failed: $(tail -1 "$work/$client-$rt.err")"
		fi
	done
	[ "$rt" != crun ] || fix_off
done

busy=$(cpu_busy_pct)
[ "$busy" -le 10 ] || log "WARNING: ${busy}% CPU busy before the start: every figure is inflated"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ alternating rounds
# Each round runs every runtime once through each client. The runtime order rotates by one
# per round and the client order flips, so no pair is always first; each timed run follows
# the same SETTLE pause (podman's exit command and the shim finish in it). crun's cgroup
# fix is mounted before its pair of runs and removed after, outside the timed spans.
log "$WARMUP warm-up + $ROUNDS rounds of ${RUNTIMES[*]} through ${CLIENTS[*]}"
for ((r = 0; r < WARMUP + ROUNDS; r++)); do
	for ((k = 0; k < ${#RUNTIMES[@]}; k++)); do
		rt=${RUNTIMES[(r + k) % ${#RUNTIMES[@]}]}
		if ((r % 2)); then order=(ctr podman); else order=(podman ctr); fi
		[ "${OK[podman-$rt]}${OK[ctr-$rt]}" != 00 ] || continue
		if [ "$rt" = crun ] && ! fix_on; then
			fix_skips=$((fix_skips + 1))
			continue
		fi
		for client in "${order[@]}"; do
			[ "${OK[$client-$rt]}" = 1 ] || continue
			settle_clients 5
			sleep "$SETTLE"
			t0=$EPOCHREALTIME
			if run_one "$client" "$rt"; then
				t1=$EPOCHREALTIME
				((r < WARMUP)) || echo $(($(usec "$t1") - $(usec "$t0"))) >>"$work/$client-$rt.lat"
			else
				FAILS[$client-$rt]=$((FAILS[$client-$rt] + 1))
			fi
		done
		[ "$rt" != crun ] || fix_off
	done
done

# --------------------------------------------------------------------------- report
declare -A MED MIN MAX
for client in "${CLIENTS[@]}"; do
	for rt in "${RUNTIMES[@]}"; do
		f=$work/$client-$rt.lat
		MED[$client-$rt]=$(median <"$f")
		MIN[$client-$rt]=$(sort -n "$f" | head -1)
		MAX[$client-$rt]=$(sort -n "$f" | tail -1)
	done
done

echo
echo "# runtimes through clients, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) CPUs"
echo "podman $(podman --version | awk '{print $3}') (conmon $(conmon --version | awk 'NR == 1 {print $3}')," \
	"$(awk '/^driver/ {print $3}' "$work/storage.conf" | tr -d '"') storage, --network $NETWORK);" \
	"containerd $(containerd --version | awk '{print $3}') (io.containerd.runc.v2 shim, overlayfs)"
echo "image: busybox-static rootfs (scripts/mkbundle.sh), process /bin/true"
[ "$(basename "$vessel")" = vessel ] || echo "NOTE: vessel's rows are $vessel standing in for vessel"
echo "cgroup fix for crun: $fix_note"
[ $fix_skips = 0 ] || echo "NOTE: crun sat out $fix_skips rounds: its cgroup fix could not be mounted (hugetlb in use on cgroup2)"
echo "before: ${busy}% CPU busy over 1 s, loadavg $load_before"
echo
printf '| %-6s | %-7s | %-14s | %10s | %8s | %8s | %5s |\n' client runtime version \
	"median ms" "min ms" "max ms" fails
echo "| ------ | ------- | -------------- | ---------: | -------: | -------: | ----: |"
for client in "${CLIENTS[@]}"; do
	for rt in "${RUNTIMES[@]}"; do
		if [ "${OK[$client-$rt]}" != 1 ]; then
			printf '| %-6s | %-7s | %-14s | FAILED: %s\n' "$client" "$rt" "${VER[$rt]:0:14}" \
				"$(tail -1 "$work/$client-$rt.err")"
			continue
		fi
		printf '| %-6s | %-7s | %-14s | %10s | %8s | %8s | %5s |\n' "$client" "$rt" \
			"${VER[$rt]:0:14}" "$(ms "${MED[$client-$rt]}")" "$(ms "${MIN[$client-$rt]}")" \
			"$(ms "${MAX[$client-$rt]}")" "${FAILS[$client-$rt]}"
	done
done
echo
echo "median of $ROUNDS alternating rounds after $WARMUP warm-up; each run: the client's whole" \
	"command (fork+exec+wait, bash EPOCHREALTIME), ${SETTLE}s pause before it"
echo
for client in "${CLIENTS[@]}"; do
	[ "${OK[$client-vessel]}" = 1 ] || continue
	echo "$client: vessel/crun $(ratio "${MED[$client-vessel]}" "${MED[$client-crun]}")x," \
		"vessel/runc $(ratio "${MED[$client-vessel]}" "${MED[$client-runc]}")x"
done
for client in "${CLIENTS[@]}"; do
	if [ "${OK[$client-vessel]}" != 1 ] || [ "${OK[$client-crun]}" != 1 ]; then
		echo "target $client: vessel <= crun: not measured (a row failed)"
		continue
	fi
	got=$(ms "${MED[$client-vessel]}") want=$(ms "${MED[$client-crun]}")
	if awk -v a="$got" -v b="$want" 'BEGIN { exit !(a <= b) }'; then
		echo "target $client: vessel <= crun: met ($got ms vs $want ms)"
	else
		echo "target $client: vessel <= crun: NOT met ($got ms vs $want ms)"
	fi
done

# ------------------------------------------------------------------ nothing left behind
leaked=""
for rt in "${RUNTIMES[@]}"; do
	[ -d "$work/runtime-$rt/$ns" ] || continue
	ids=$("${BIN[$rt]}" --root "$work/runtime-$rt/$ns" list -q 2>/dev/null | tr '\n' ' ' || true)
	[ -z "$ids" ] || leaked+=" $rt containers under ctr: $ids"
done
ids=$(pod ps --all --quiet 2>/dev/null | tr '\n' ' ')
[ -z "$ids" ] || leaked+=" podman containers: $ids"
cleanup
trap - EXIT
left=""
[ ! -e "$work" ] || left+=" $work"
awk -v w="$work" '$5 == w || index($5, w "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo &&
	left+=" mounts under $work"
[ -z "$(find $CG -maxdepth 2 -mindepth 1 -type d -name "$ns")" ] || left+=" cgroups named $ns"
[ -z "$(pids_naming "$work")" ] || left+=" processes naming $work"
for c in $fix_ctrls; do
	fix_restored || left+=" cgroup controller $c still off cgroup2"
	[ "${fix_made_dir[$c]:-}" != 1 ] || [ ! -e "$CG/$c" ] || left+=" $CG/$c"
done
echo
[ -z "$leaked" ] || echo "the clients left behind (removed by the bench):$leaked"
if [ -n "$left" ]; then
	echo "left behind:$left"
	exit 1
fi
echo "left behind: no containers, cgroups, mounts or processes"
for client in "${CLIENTS[@]}"; do
	for rt in "${RUNTIMES[@]}"; do [ "${OK[$client-$rt]}" = 1 ] || exit 1; done
done
