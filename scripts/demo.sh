#!/usr/bin/env bash
# demo.sh: the main part of `make demo`. Prepares the default image (a busybox bundle), runs
# a container from it with `vessel run` and shows what the container sees: its hostname,
# that it is PID 1, its namespaces next to the host's, and the cgroup limits this script set.
# Every step is checked; any failure ends the demo with a non-zero status.
#
# Usage: scripts/demo.sh [VESSEL]   (default: $VESSEL, else build/vessel; needs root)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=/usr/bin/python3
vessel=${1:-${VESSEL:-$ROOT/build/vessel}}
case "$vessel" in */*) vessel=$(realpath -m "$vessel") ;; esac
image=$ROOT/images/out/busybox-bundle
bundle=$ROOT/images/out/demo-bundle
mem_limit=$((64 << 20))
pids_limit=32
id=vessel-demo-$$
run_timeout=60

section() { printf '\n== %s ==\n' "$*"; }
die() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

command -v "$vessel" >/dev/null || die "vessel not found at $vessel (run make)"
[ "$(id -u)" = 0 ] || die "containers need root here: run as root (sudo make demo)"

cleanup() {
	# `run` deletes the container when it ends; this only matters after a timeout or a kill
	if "$vessel" state "$id" >/dev/null 2>&1; then
		"$vessel" delete --force "$id" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

section "1. default image: $image"
VESSEL=$vessel "$ROOT/scripts/mkbundle.sh" "$image" || die "could not build the default image"
echo "rootfs: $("$image/rootfs/bin/busybox" | head -1)"
echo "        $(find "$image/rootfs" -type l | wc -l) applet links, $(du -sh "$image/rootfs" | cut -f1)"
echo "config: $image/config.json (from \`$(basename "$vessel") spec\`)"

# What the container runs: busybox sh, reporting in "label: value" lines that the host
# side below checks and annotates.
read -r -d '' inside <<'EOF' || true
set -e
echo "hostname: $(hostname)"
echo "pid: $$"
echo "processes:"
ps -o pid,user,comm | sed 's/^/    /'
for ns in pid mnt uts ipc net cgroup user; do
	echo "namespace $ns: $(readlink /proc/self/ns/$ns)"
done
cg=/sys/fs/cgroup
if [ -f $cg/memory.max ]; then
	echo "memory limit: $(cat $cg/memory.max) ($cg/memory.max)"
	echo "pids limit: $(cat $cg/pids.max) ($cg/pids.max)"
else
	echo "memory limit: $(cat $cg/memory/memory.limit_in_bytes) ($cg/memory/memory.limit_in_bytes)"
	echo "pids limit: $(cat $cg/pids/pids.max) ($cg/pids/pids.max)"
fi
echo "cgroups:"
grep -E '^0::|:(memory|pids):' /proc/self/cgroup | sed 's/^/    /'
EOF

section "2. container config: $bundle/config.json"
mkdir -p "$bundle"
"$PYTHON" - "$image" "$bundle/config.json" "$mem_limit" "$pids_limit" "$inside" <<'EOF'
import json, os, sys

image, dst, mem, pids, inside = sys.argv[1:]
with open(image + "/config.json") as f:
    c = json.load(f)
c["process"]["args"] = ["/bin/sh", "-c", inside]
c["root"]["path"] = image + "/rootfs"  # the default image's rootfs, shared read-only
res = c.setdefault("linux", {}).setdefault("resources", {})
res["memory"] = {"limit": int(mem)}
res["pids"] = {"limit": int(pids)}
# the container reads its limits back from its own cgroup mount
if not any(m.get("destination") == "/sys/fs/cgroup" for m in c.get("mounts", [])):
    c.setdefault("mounts", []).append({"destination": "/sys/fs/cgroup", "type": "cgroup",
        "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
tmp = "%s.%d" % (dst, os.getpid())  # another demo may be reading dst
with open(tmp, "w") as f:
    json.dump(c, f, indent="\t")
    f.write("\n")
os.replace(tmp, dst)
EOF
echo "hostname vessel, memory limit $((mem_limit >> 20)) MiB, pids limit $pids_limit," \
	"root $image/rootfs (read-only)"

section "3. $(basename "$vessel") run --bundle $bundle $id"
set +e
out=$(timeout "$run_timeout" "$vessel" run --bundle "$bundle" "$id" </dev/null)
rc=$?
set -e
[ $rc -ne 124 ] || die "vessel run did not finish in ${run_timeout}s"
[ $rc -eq 0 ] || { printf '%s\n' "$out"; die "vessel run exited with status $rc"; }

value() { sed -n "s/^$1: //p" <<<"$out" | head -1; }
fails=0
check() { # label, ok?, detail
	if [ "$2" = 1 ]; then
		printf '  %-22s ok: %s\n' "$1" "$3"
	else
		printf '  %-22s FAIL: %s\n' "$1" "$3"
		fails=$((fails + 1))
	fi
}

while IFS= read -r line; do
	case "$line" in
	"namespace "*)
		ns=${line#namespace }
		ns=${ns%%:*}
		mine=${line#*: }
		host=$(readlink "/proc/self/ns/$ns" 2>/dev/null || echo "?")
		if [ "$mine" = "$host" ]; then verdict="shared with the host"; else verdict="own (host: $host)"; fi
		printf '%-40s %s\n' "$line" "$verdict"
		;;
	*) printf '%s\n' "$line" ;;
	esac
done <<<"$out"

section "4. checks"
h=$(value hostname)
check hostname "$([ "$h" = vessel ] && echo 1)" "\"$h\" (config.json says \"vessel\"; the host is \"$(hostname)\")"
p=$(value pid)
check "pid 1" "$([ "$p" = 1 ] && echo 1)" "the container's shell has \$\$ = $p"
own=0
for ns in pid mnt uts ipc net; do
	[ "$(sed -n "s/^namespace $ns: //p" <<<"$out")" != "$(readlink /proc/self/ns/$ns)" ] &&
		own=$((own + 1))
done
check namespaces "$([ $own = 5 ] && echo 1)" "$own of pid mnt uts ipc net differ from the host's"
m=$(value "memory limit")
check "memory limit" "$([ "${m%% *}" = "$mem_limit" ] && echo 1)" \
	"$m = $((mem_limit >> 20)) MiB as set"
pl=$(value "pids limit")
check "pids limit" "$([ "${pl%% *}" = "$pids_limit" ] && echo 1)" "$pl as set"
[ $fails -eq 0 ] || die "$fails check(s) failed"

# ---------------------------------------------------------------------------------------
# The microVM: the default Linux guest (images/out) boots to init and runs a command. It needs
# a hardware-assisted KVM (VT-x/AMD-V: kvm_intel or kvm_amd); where this machine has none (no
# /dev/kvm, or kvm_pvm, where guest kernel code is interpreted and stock Linux dies early),
# vessel runs inside the emulated KVM host of the tests (tests/kvmhost/run: QEMU's TCG with
# AMD SVM and nested paging), slower but the same VMM and the same guest.
hardware_kvm() {
	{ [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

demo_vm() {
	section "5. microVM"
	local vm_out vm_cpus=2 vm_mem=128 where=() t0 t1
	if hardware_kvm; then
		echo "this host has hardware KVM ($(basename "$(ls -d /sys/module/kvm_intel /sys/module/kvm_amd 2>/dev/null | head -1)"))"
	else
		local why="this host has no /dev/kvm"
		[ -d /sys/module/kvm_pvm ] && [ -e /dev/kvm ] &&
			why="this host's /dev/kvm is kvm_pvm (no VT-x/AMD-V: stock Linux cannot boot there)"
		echo "$why: vessel runs inside the emulated KVM host (tests/kvmhost/run, QEMU TCG with SVM; slow)"
		where=("$ROOT/tests/kvmhost/run" --timeout 600 --)
	fi
	echo "booting the default Linux guest (images/out) with $vm_cpus vCPUs, ${vm_mem} MiB:"
	t0=$EPOCHREALTIME
	# quiet: the guest's command output, not the kernel's boot log (no double quotes in the
	# command: the kernel command line that carries it has no way to escape them)
	vm_out=$(timeout 660 "${where[@]}" "$vessel" vm run --cpus $vm_cpus --memory ${vm_mem}M \
		--cmdline "console=ttyS0 quiet panic=-1" -- \
		sh -c 'echo kernel: $(uname -r); echo cpus: $(nproc); echo memory: $(sed -n s/^MemTotal:\ *//p /proc/meminfo)' \
		</dev/null) || die "vessel vm run failed (status $?)"
	t1=$EPOCHREALTIME
	vm_out=$(tr -d '\r' <<<"$vm_out") # the serial console ends lines with CR LF
	sed 's/^/  guest | /' <<<"$vm_out"
	local cpus
	cpus=$(sed -n 's/^cpus: //p' <<<"$vm_out")
	check "guest kernel" "$(grep -q '^kernel: [0-9]' <<<"$vm_out" && echo 1)" "$(sed -n 's/^kernel: //p' <<<"$vm_out")"
	check "vCPUs" "$([ "$cpus" = $vm_cpus ] && echo 1)" "${cpus:-?} online in the guest (asked for $vm_cpus)"
	check "guest command" "$(grep -q '^vessel-guest: exit status 0$' <<<"$vm_out" && echo 1)" "exit status 0"
	printf '  %-22s %s\n' "spawn to exit" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f s", b-a}')${where[*]:+ (in the emulated host, boot included)}"
	[ $fails -eq 0 ] || die "$fails check(s) failed"
}
demo_vm

section "demo finished: all steps passed"
