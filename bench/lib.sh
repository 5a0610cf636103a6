# bench/lib.sh - what the bench scripts share; sourced by each after it sets ROOT.
# Every name a script gives itself here is still its own: errors say "<script>: ...".

BENCH_NAME=$(basename "$0")
export BENCH_NAME

log() { printf '[%s] %s\n' "${BENCH_NAME%.sh}" "$*" >&2; }
die() {
	echo "$BENCH_NAME: $*" >&2
	exit 1
}

# whole NAME... and seconds NAME...: a script's settings from the environment, checked
# before anything runs.
whole() {
	local n
	for n; do [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'"; done
}
seconds() {
	local n
	for n; do [[ ${!n} =~ ^[0-9]*\.?[0-9]+$ ]] || die "$n must be a number of seconds, not '${!n}'"; done
}

# The embedded Python programs import bench/benchlib.py.
export PYTHONPATH="$ROOT/bench${PYTHONPATH:+:$PYTHONPATH}"

hardware_kvm() {
	{ [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

# bench_kvm_host TIMEOUT [VAR...] [-- ARG...]: where this machine has no hardware-assisted
# /dev/kvm (none, or kvm_pvm), runs this script again inside the emulated KVM host
# (tests/kvmhost/run, bounded by TIMEOUT seconds) with the named variables and the ARGs,
# and does not return. Otherwise sets bench_host to a line naming the host, for the
# figures' header: a peer's ratio is only comparable within one host.
bench_kvm_host() {
	local timeout=$1 v
	shift
	local vars=(VESSEL_KVMHOST=inside)
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		vars+=("$1=${!1}")
		shift
	done
	[ $# -gt 0 ] && shift
	if ! hardware_kvm; then
		[ "${VESSEL_KVMHOST:-}" != inside ] || die "inside the emulated KVM host, yet no usable /dev/kvm"
		echo "$BENCH_NAME: no hardware-assisted /dev/kvm here, so the bench runs inside the emulated KVM host (tests/kvmhost/run)" >&2
		exec "$ROOT/tests/kvmhost/run" --timeout "$timeout" -- env "${vars[@]}" "$0" "$@"
	fi
	if [ "${VESSEL_KVMHOST:-}" = inside ]; then
		bench_host="emulated KVM host (QEMU TCG, SVM+NPT): $(uname -r), $(nproc) CPUs, kvm_amd"
	else
		v=kvm_amd
		[ -d /sys/module/kvm_intel ] && v=kvm_intel
		bench_host="hardware KVM ($v): $(uname -r), $(nproc) CPUs"
	fi
}

# --- benches that drive podman and containerd in a private $work directory

pids_naming() { # pids whose command line names $1 (this run's private paths)
	pgrep -f -- "$1" || true
}

# settle_clients SECONDS: podman's exit command (`podman container cleanup`) and conmon
# outlive `podman run --rm` a little (a VM's virtiofsd goes with its VMM); all name the
# storage root. Wait for them, untimed, so no run pays for the last one's teardown.
settle_clients() {
	local i
	for ((i = 0; i < $1 * 50; i++)); do
		[ -z "$(pids_naming "$work/root")" ] && return 0
		sleep 0.02
	done
	log "WARNING: podman, conmon or a VMM still running $1 s after the run"
}

unmount_work() {
	awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

usec() { # EPOCHREALTIME -> microseconds
	local s=${1%.*} f=${1#*.}
	echo $((s * 1000000 + 10#$f))
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# microseconds -> milliseconds with MS_DIGITS decimals (a script sets it for its figures)
ms() { awk -v u="$1" -v d="${MS_DIGITS:-1}" 'BEGIN { if (u == "nan" || u == "") print "n/a"; else printf "%.*f", d, u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }

cpu_busy_pct() { # share of all CPUs busy over 1 s, from /proc/stat
	local a b t1=0 t2=0 x
	read -ra a </proc/stat
	sleep 1
	read -ra b </proc/stat
	for x in "${a[@]:1}"; do t1=$((t1 + x)); done
	for x in "${b[@]:1}"; do t2=$((t2 + x)); done
	awk -v i1="${a[4]}" -v i2="${b[4]}" -v d=$((t2 - t1)) 'BEGIN { printf "%.0f", d ? 100 * (1 - (i2 - i1) / d) : 0 }'
}
