#!/usr/bin/env bash
# container.sh: vessel, crun and runc side by side, in one run, on the same busybox bundle
# (scripts/mkbundle.sh, process /bin/true), with the floor beside them: unshare(1) making
# the same namespaces and running the bundle's /bin/true, the kernel's share of any
# runtime's work. Prints a table and the ratios vessel/crun, vessel/runc and vessel/floor.
# See bench/README.md for what each figure means and how it is taken.
#
# Usage: bench/container.sh            (as root; `make bench` builds vessel first)
# Env:   VESSEL=build/vessel  ROUNDS=30  WARMUP=3  SEQ=100  RSS_RUNS=10  SETTLE=0.1  CRUN_FIX=mask
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME's decimal point

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-30}
WARMUP=${WARMUP:-3}
SEQ=${SEQ:-100}
RSS_RUNS=${RSS_RUNS:-10}
SETTLE=${SETTLE:-0.1}
BUNDLE=$ROOT/images/out/bench-bundle
CG=/sys/fs/cgroup

. "$ROOT/bench/lib.sh"
MS_DIGITS=2
whole ROUNDS WARMUP SEQ RSS_RUNS
seconds SETTLE
[ "$ROUNDS" -ge 1 ] && [ "$SEQ" -ge 1 ] && [ "$RSS_RUNS" -ge 1 ] ||
	die "ROUNDS, SEQ and RSS_RUNS must be at least 1"
[ "$(id -u)" = 0 ] || die "must run as root (containers and cgroups)"
[ -x /usr/bin/time ] || die "GNU time missing (apt-get install time)"

vessel=${VESSEL:-$ROOT/build/vessel}
case "$vessel" in */*) vessel=$(realpath -m "$vessel") ;; esac
vessel=$(command -v "$vessel") || die "vessel not found at ${VESSEL:-build/vessel} (run make)"
RUNTIMES=(vessel crun runc) # what keeps state (--root) and may leave containers behind
PEERS=("${RUNTIMES[@]}" floor)
declare -A BIN=([vessel]=$vessel [crun]=$(command -v crun || echo /usr/bin/crun)
	[runc]=$(command -v runc || echo /usr/sbin/runc) [floor]=$(command -v unshare || echo /usr/bin/unshare))
for rt in crun runc; do [ -x "${BIN[$rt]}" ] || die "$rt not installed (scripts/deps.sh bench)"; done
[ -x "${BIN[floor]}" ] || die "unshare not installed (util-linux)"

work=$(mktemp -d /run/vessel-bench.XXXXXX)
tag=vb$$ # every container id starts with it: the cleanup finds leftovers by it

# ---------------------------------------------------------------- crun's cgroup fix
# crun 1.8 refuses every container while the cgroup2 hierarchy of a hybrid host owns a
# controller (here hugetlb). The fix is in place only around crun's runs, so vessel and
# runc see the host's own layout. CRUN_FIX picks how:
#  mask (default): bind-mount an empty file over cgroup2's controller list, which is all
#        crun looks at. Undone with one umount; nothing else on the host changes.
#  v1:   mount the controller as a cgroup v1 hierarchy, as the anchors do; this moves it off
#        cgroup2 and crun then also makes a hugetlb cgroup. The hierarchy dies, giving the
#        controller back to cgroup2, only when unmounted with no child cgroup left, and the
#        kernel frees crun's cgroup asynchronously (0.2 to 1.5 s here), so fix_v1_off
#        remounts and unmounts until the controller is back. Not the default: any other
#        runtime (podman, a test) that makes a cgroup while it is mounted pins the
#        hierarchy, and the controller stays off cgroup2 until that cgroup is removed.
#        When the controller is in use on cgroup2 (enabled in the root's subtree_control)
#        the kernel refuses to move it; the bench then masks instead.
CRUN_FIX=${CRUN_FIX:-mask}
[[ $CRUN_FIX =~ ^(mask|v1)$ ]] || die "CRUN_FIX must be mask or v1, not '$CRUN_FIX'"
CG2=$CG/unified
fix_ctrls=""
fix_mode=""
fix_note="none needed"
fix_mounted=0
fix_stuck=0
fix_windows=0
fix_wait_us=0
declare -A fix_used=()
declare -A fix_made_dir=()
[ "$(stat -fc %T $CG)" = cgroup2fs ] || fix_ctrls=$(cat $CG2/cgroup.controllers 2>/dev/null || true)
if [ -n "$fix_ctrls" ]; then
	fix_mode=$CRUN_FIX
elif [ "$(stat -fc %T $CG)" != cgroup2fs ] && mountpoint -q $CG/hugetlb; then
	fix_note="someone else's v1 mount of cgroup2's controllers was in place for all runtimes"
fi

fix_in_use_on_cgroup2() {
	local c
	for c in $fix_ctrls; do ! grep -qw "$c" $CG2/cgroup.subtree_control || return 0; done
	return 1
}

fix_restored() {
	local c
	for c in $fix_ctrls; do grep -qw "$c" $CG2/cgroup.controllers || return 1; done
}

fix_v1_on() {
	local c
	for c in $fix_ctrls; do
		if [ ! -d "$CG/$c" ]; then
			mkdir "$CG/$c"
			fix_made_dir[$c]=1
		fi
		mount -t cgroup -o "$c" cgroup "$CG/$c" 2>"$work/fix.err" || {
			log "cannot mount cgroup v1 '$c' for crun: $(head -1 "$work/fix.err")"
			fix_v1_off 2
			return 1
		}
	done
}

fix_v1_off() { # [seconds to wait for the kernel]
	local c i limit=$((${1:-10} * 50))
	for c in $fix_ctrls; do ! mountpoint -q "$CG/$c" || umount "$CG/$c"; done
	for ((i = 1; i <= limit; i++)); do
		fix_restored && break
		sleep 0.02
		if ((i % 5 == 0)); then
			for c in $fix_ctrls; do
				mount -t cgroup -o "$c" cgroup "$CG/$c" 2>/dev/null && umount "$CG/$c"
			done
		fi
	done
	for c in "${!fix_made_dir[@]}"; do
		! mountpoint -q "$CG/$c" && rmdir "$CG/$c" 2>/dev/null && unset "fix_made_dir[$c]"
	done
	fix_restored || {
		# another runtime's cgroup pins the hierarchy: mounting it again would only let
		# more in, so the rest of the run masks instead
		fix_stuck=1
		fix_mode=mask
		log "WARNING: '$fix_ctrls' not back on cgroup2: a cgroup made by someone else pins the v1 hierarchy; masking from now on"
	}
}

fix_mask_on() {
	: >"$work/no-controllers"
	mount --bind "$work/no-controllers" $CG2/cgroup.controllers 2>"$work/fix.err" || {
		log "cannot hide $CG2/cgroup.controllers for crun: $(head -1 "$work/fix.err")"
		return 1
	}
}

fix_mask_off() { ! mountpoint -q $CG2/cgroup.controllers || umount $CG2/cgroup.controllers; }

fix_on() { # fails, saying why in crun's error log, when crun cannot have its fix
	[ -n "$fix_mode" ] && [ $fix_mounted = 0 ] || return 0
	if [ "$fix_mode" = v1 ] && fix_in_use_on_cgroup2; then
		log "'$fix_ctrls' is in use on cgroup2 ($CG2/cgroup.subtree_control): masking its controller list for crun instead"
		fix_mode=mask
	fi
	if "fix_${fix_mode}_on" || { [ "$fix_mode" = v1 ] && fix_mode=mask && fix_mask_on; }; then
		fix_mounted=1
		fix_used[$fix_mode]=1
		return 0
	fi
	echo "no cgroup fix for crun possible (see the log above)" >>"$work/crun.err"
	return 1
}

fix_off() { # [seconds to wait for the kernel]
	[ $fix_mounted = 1 ] || return 0
	local t0=$EPOCHREALTIME
	"fix_${fix_mode}_off" "$@"
	fix_mounted=0
	fix_windows=$((fix_windows + 1))
	fix_wait_us=$((fix_wait_us + $(usec "$EPOCHREALTIME") - $(usec "$t0")))
}

crun_fix_on() { # a crun that cannot have its fix is out of the bench from then on
	[ "$1" != crun ] || fix_on || {
		OK[crun]=0
		return 1
	}
}
crun_fix_off() { [ "$1" != crun ] || fix_off; }

# ------------------------------------------------------------------------ cleanup
leftover_cgroups() {
	find $CG -maxdepth 8 -mindepth 2 -type d -name "$tag-*" 2>/dev/null || true
}

cleanup() {
	local rt id
	set +e
	for rt in "${RUNTIMES[@]}"; do
		[ -d "$work/root-$rt" ] || continue
		for id in $("${BIN[$rt]}" --root "$work/root-$rt" list -q 2>/dev/null); do
			log "deleting leftover $rt container $id"
			"${BIN[$rt]}" --root "$work/root-$rt" delete --force "$id" >/dev/null 2>&1
		done
	done
	leftover_cgroups | sort -r | while read -r d; do
		log "removing leftover cgroup $d"
		# a runtime that took a plain directory for a v1 hierarchy filled it with files
		if [ "$(stat -fc %T "$d")" = tmpfs ]; then rm -rf "$d"; else rmdir "$d"; fi
	done
	fix_off 10
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------- bundle
log "bundle: $BUNDLE (scripts/mkbundle.sh, config from \`$vessel spec\`)"
VESSEL=$vessel "$ROOT/scripts/mkbundle.sh" "$BUNDLE" --args /bin/true ||
	die "could not build the bundle"
# crun 1.8 rejects every ociVersion but 1.0.x ("unknown version specified"): all three
# runtimes then run the bundle with 1.0.2, which changes nothing else in the config
mkdir "$work/spec"
(cd "$work/spec" && "$vessel" spec) || die "\`$vessel spec\` failed"
oci_version=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("ociVersion", ""))' \
	"$work/spec/config.json")
if [[ $oci_version != 1.0.* ]]; then
	/usr/bin/python3 - "$BUNDLE/config.json" <<'PY'
import json, os, sys

path = sys.argv[1]
with open(path) as f:
    config = json.load(f)
if config.get("ociVersion") != "1.0.2":
    config["ociVersion"] = "1.0.2"
    with open(path + ".tmp", "w") as f:
        json.dump(config, f, indent="\t")
        f.write("\n")
    os.replace(path + ".tmp", path)
PY
fi

# -------------------------------------------------------------------------- helpers
n_run=0
# The floor: the namespaces of the bundle's config made by the kernel at one fork
# (unshare --fork), the child chrooted into the rootfs to exec the same static /bin/true.
# No cgroup, mounts, state or sync: what no runtime can go below.
FLOOR_ARGS=(--fork --pid --mount --uts --ipc --net --cgroup --root "$BUNDLE/rootfs" /bin/true)
CMD=()
next_cmd() { # peer -> CMD: the command line that runs its next container to completion
	n_run=$((n_run + 1))
	if [ "$1" = floor ]; then
		CMD=("${BIN[floor]}" "${FLOOR_ARGS[@]}")
	else
		CMD=("${BIN[$1]}" --root "$work/root-$1" run --bundle "$BUNDLE" "$tag-$1-$n_run")
	fi
}
run_one() { # peer; output to $work/$rt.err
	next_cmd "$1"
	"${CMD[@]}" </dev/null >/dev/null 2>>"$work/$1.err"
}


# -------------------------------------------------------------------------- smoke
declare -A OK VER
for rt in "${PEERS[@]}"; do
	[ "$rt" = floor ] || mkdir -p "$work/root-$rt"
	: >"$work/$rt.err"
	VER[$rt]=$("${BIN[$rt]}" --version 2>/dev/null | head -1 |
		sed 's/^[a-z]* version //; s/^unshare from util-linux /unshare /')
	OK[$rt]=0
	if crun_fix_on "$rt" && run_one "$rt"; then
		OK[$rt]=1
	else
		log "$rt cannot run the bundle: $(tail -1 "$work/$rt.err")"
	fi
	crun_fix_off "$rt"
done
active=()
for rt in "${PEERS[@]}"; do [ "${OK[$rt]}" = 1 ] && active+=("$rt"); done
[ ${#active[@]} -gt 0 ] || die "no runtime could run the bundle"

busy=$(cpu_busy_pct)
[ "$busy" -le 10 ] || log "WARNING: ${busy}% CPU busy before the start: every figure is inflated"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# -------------------------------------------------------- run latency, alternating
# Each round runs every runtime once, the order rotated by one per round so none is always
# first. Each timed run starts after the same SETTLE pause (crun's cgroup fix is mounted
# before it and removed after, outside the timed span). The pause matters: the first write
# to a v1 cgroup.procs after an idle spell waits for an RCU grace period (8-20 ms here),
# later ones within a grace period do not, so back-to-back runs hide a cost that a lone
# `run` pays; crun's fix, when it has to wait for the kernel, would hand that idle spell to
# whichever runtime comes next. The SEQ series shows the back-to-back case. Timed with bash's EPOCHREALTIME
# around a plain fork+exec+wait of `RUNTIME run`: no `date` process inside the span.
declare -A FAILS
for rt in "${active[@]}"; do : >"$work/$rt.lat" && FAILS[$rt]=0; done
log "run latency: $WARMUP warm-up + $ROUNDS rounds of ${active[*]}"
for ((r = 0; r < WARMUP + ROUNDS; r++)); do
	for ((k = 0; k < ${#active[@]}; k++)); do
		rt=${active[(r + k) % ${#active[@]}]}
		[ "${OK[$rt]}" = 1 ] && crun_fix_on "$rt" || continue
		sleep "$SETTLE"
		t0=$EPOCHREALTIME
		if run_one "$rt"; then
			t1=$EPOCHREALTIME
			((r < WARMUP)) || echo $(($(usec "$t1") - $(usec "$t0"))) >>"$work/$rt.lat"
		else
			FAILS[$rt]=$((FAILS[$rt] + 1))
		fi
		crun_fix_off "$rt"
	done
done

# ---------------------------------------------------------- sequential runs, per runtime
declare -A SEQ_US SEQ_FAILS
for rt in "${active[@]}"; do
	log "$SEQ sequential runs: $rt"
	[ "${OK[$rt]}" = 1 ] && crun_fix_on "$rt" || continue
	sleep "$SETTLE"
	f=0
	t0=$EPOCHREALTIME
	for ((i = 0; i < SEQ; i++)); do run_one "$rt" || f=$((f + 1)); done
	t1=$EPOCHREALTIME
	crun_fix_off "$rt"
	SEQ_US[$rt]=$(($(usec "$t1") - $(usec "$t0")))
	SEQ_FAILS[$rt]=$f
done

# ------------------------------------------------------------------------- peak RSS
# GNU time %M: the largest max RSS of the runtime and the children it waited for (runc's
# `runc init`, a re-exec of runc, counts; the container's /bin/true is not waited for by
# the measured process in any of the three; the floor's unshare does wait for it)
declare -A RSS
for rt in "${active[@]}"; do
	log "peak RSS: $RSS_RUNS runs of $rt"
	[ "${OK[$rt]}" = 1 ] && crun_fix_on "$rt" || continue
	: >"$work/$rt.rss"
	for ((i = 0; i < RSS_RUNS; i++)); do
		next_cmd "$rt"
		/usr/bin/time -f '%M' -o "$work/rss.tmp" "${CMD[@]}" </dev/null >/dev/null 2>>"$work/$rt.err" &&
			cat "$work/rss.tmp" >>"$work/$rt.rss"
	done
	crun_fix_off "$rt"
	RSS[$rt]=$(sort -n "$work/$rt.rss" | tail -1)
done

# --------------------------------------------------------------------------- report
declare -A MED MIN P90
for rt in "${active[@]}"; do
	MED[$rt]=$(median <"$work/$rt.lat")
	MIN[$rt]=$(sort -n "$work/$rt.lat" | head -1)
	P90[$rt]=$(sort -n "$work/$rt.lat" | awk '{ a[NR] = $1 } END { i = int(NR * 0.9 + 0.999); print NR ? a[i] : "nan" }')
done
kib_mib() { awk -v k="$1" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f", k / 1024 }'; }

echo
echo "# container runtimes, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $(nproc) CPUs"
echo "bundle: $BUNDLE (busybox-static, process /bin/true, config from \`$(basename "$vessel") spec\`)"
[[ $oci_version == 1.0.* ]] || echo "ociVersion: \"$oci_version\" from spec, run as \"1.0.2\" (crun 1.8 accepts only 1.0.x)"
[ "$(basename "$vessel")" = vessel ] || echo "NOTE: vessel's row is $vessel standing in for vessel"
if [ -n "${fix_used[v1]:-}" ]; then
	fix_note="'$fix_ctrls' mounted as cgroup v1 (off cgroup2) only around crun's runs"
fi
if [ -n "${fix_used[mask]:-}" ]; then
	fix_note="${fix_note/#none needed/}${fix_used[v1]:+; later, }an empty file over $CG2/cgroup.controllers"
	fix_note+=" only around crun's runs (crun then makes no '$fix_ctrls' cgroup, like vessel and runc here)"
fi
[ -z "${fix_used[*]}" ] || fix_note+="; vessel and runc ran without it"
echo "cgroup fix for crun: $fix_note"
[ $fix_windows = 0 ] || echo "  ($fix_windows crun windows; undoing the fix took" \
	"$(awk -v u=$fix_wait_us -v n=$fix_windows 'BEGIN { printf "%.3f", u / n / 1e6 }') s each, untimed)"
[ $fix_stuck = 0 ] || echo "NOTE: a cgroup someone else made in the v1 '$fix_ctrls' hierarchy kept it off cgroup2; masked from then on"
echo "before: ${busy}% CPU busy over 1 s, loadavg $load_before"
echo
printf '| %-7s | %-14s | %11s | %8s | %8s | %10s | %12s | %5s |\n' runtime version \
	"run med ms" "min ms" "p90 ms" "$SEQ runs s" "peak RSS MiB" fails
echo "| ------- | -------------- | ----------: | -------: | -------: | ---------: | -----------: | ----: |"
for rt in "${PEERS[@]}"; do
	if [ "${OK[$rt]}" != 1 ]; then
		printf '| %-7s | %-14s | FAILED: %s\n' "$rt" "${VER[$rt]:-?}" "$(tail -1 "$work/$rt.err")"
		continue
	fi
	printf '| %-7s | %-14s | %11s | %8s | %8s | %10s | %12s | %5s |\n' "$rt" "${VER[$rt]:0:14}" \
		"$(ms "${MED[$rt]}")" "$(ms "${MIN[$rt]}")" "$(ms "${P90[$rt]}")" \
		"$(awk -v u="${SEQ_US[$rt]}" 'BEGIN { printf "%.2f", u / 1e6 }')" \
		"$(kib_mib "${RSS[$rt]}")" "$((FAILS[$rt] + SEQ_FAILS[$rt]))"
done
echo
echo "run: median of $ROUNDS alternating rounds after $WARMUP warm-up, own loop (bash EPOCHREALTIME), ${SETTLE}s pause before each"
echo "$SEQ runs: back to back, one runtime at a time; peak RSS: GNU time %M, max of $RSS_RUNS runs"
echo "floor: unshare ${FLOOR_ARGS[*]/#$BUNDLE/BUNDLE} (the kernel's work: namespaces, fork, exec)"

if [ "${OK[vessel]}" = 1 ]; then
	echo
	for peer in crun runc floor; do
		[ "${OK[$peer]}" = 1 ] || continue
		echo "vessel/$peer: run $(ratio "${MED[vessel]}" "${MED[$peer]}")x," \
			"$SEQ runs $(ratio "${SEQ_US[vessel]}" "${SEQ_US[$peer]}")x," \
			"peak RSS $(ratio "${RSS[vessel]}" "${RSS[$peer]}")x"
	done
	target() { # label, holds?, detail
		if [ "$2" = 1 ]; then echo "target $1: met ($3)"; else echo "target $1: NOT met ($3)"; fi
	}
	time_targets() { # peer, factor
		[ "${OK[$1]}" = 1 ] || return 0
		local got want
		got=$(ms "${MED[vessel]}") want=$(awk -v u="${MED[$1]}" -v f="$2" 'BEGIN { printf "%.2f", f * u / 1000 }')
		target "run <= ${2}x $1" "$(awk -v a="$got" -v b="$want" 'BEGIN { print (a <= b) }')" \
			"$got ms vs $want ms"
		got=$(awk -v u="${SEQ_US[vessel]}" 'BEGIN { printf "%.2f", u / 1e6 }')
		want=$(awk -v u="${SEQ_US[$1]}" -v f="$2" 'BEGIN { printf "%.2f", f * u / 1e6 }')
		target "$SEQ runs <= ${2}x $1" "$(awk -v a="$got" -v b="$want" 'BEGIN { print (a <= b) }')" \
			"$got s vs $want s"
	}
	time_targets crun 0.5
	time_targets floor 1.15
	target "peak RSS <= 2 MiB" "$([ "${RSS[vessel]:-999999}" -le 2048 ] && echo 1)" \
		"${RSS[vessel]:-?} KiB vs 2048 KiB"
fi

# ------------------------------------------------------------------ nothing left behind
# what the runtimes themselves left (the cleanup then removes it), then what is still there
leaked=""
for rt in "${RUNTIMES[@]}"; do
	ids=$("${BIN[$rt]}" --root "$work/root-$rt" list -q 2>/dev/null | tr '\n' ' ' || true)
	[ -z "$ids" ] || leaked+=" $rt-containers: $ids"
done
[ -z "$(leftover_cgroups)" ] || leaked+=" cgroups: $(leftover_cgroups | tr '\n' ' ')"
cleanup
trap - EXIT
left=""
[ ! -e "$work" ] || left+=" $work"
[ -z "$(leftover_cgroups)" ] || left+=" cgroups: $(leftover_cgroups | tr '\n' ' ')"
awk -v b="$BUNDLE/" -v w="$work" '$5 == w || index($5, b) == 1 || index($5, w "/") == 1 { f = 1 }
	END { exit !f }' /proc/self/mountinfo && left+=" mounts under $BUNDLE or $work"
# only what this bench did: others may mount or move the same controllers meanwhile
if [ -n "${fix_used[v1]:-}" ]; then
	fix_restored || left+=" '$fix_ctrls' still off cgroup2: cgroups someone else made in its v1 hierarchy pin it (mount -t cgroup -o $fix_ctrls cgroup /mnt to see them)"
	for c in $fix_ctrls; do ! mountpoint -q "$CG/$c" || left+=" mount $CG/$c"; done
fi
[ -z "${fix_used[mask]:-}" ] || ! mountpoint -q $CG2/cgroup.controllers || left+=" mount $CG2/cgroup.controllers"
echo
[ -z "$leaked" ] || echo "the runtimes left behind (removed by the bench):$leaked"
if [ -n "$left" ]; then
	echo "left behind:$left"
	exit 1
fi
echo "left behind: no containers, cgroups or mounts"
for rt in "${PEERS[@]}"; do [ "${OK[$rt]}" = 1 ] || exit 1; done
