#!/usr/bin/env bash
# mkbundle.sh: builds an OCI bundle (rootfs + config.json) from Debian's busybox-static.
#
# Usage: scripts/mkbundle.sh DIR [--args ARG...]
#   DIR/rootfs       /bin/busybox, its applet symlinks, /etc/{passwd,group,hostname},
#                    the usual empty directories
#   DIR/config.json  `$VESSEL spec` with terminal false, hostname "vessel" and, when
#                    --args is given, process.args = ARG...
# Env: VESSEL   runtime whose `spec` writes the config (default: build/vessel)
#      BUSYBOX  static busybox to copy (default: /bin/busybox)
#
# Idempotent: the rootfs and the config are each rebuilt only when what they are made from
# (this script, busybox, the runtime binary, the args) changed; otherwise this only stats.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=/usr/bin/python3

die() {
	echo "mkbundle: $*" >&2
	exit 1
}

usage() {
	echo "usage: scripts/mkbundle.sh DIR [--args ARG...]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
case "$1" in -h | --help | -*) usage ;; esac
dir=$1
shift
have_args=0
args=()
if [ $# -gt 0 ]; then
	[ "$1" = --args ] || usage
	shift
	[ $# -gt 0 ] || die "--args needs at least one argument"
	have_args=1
	args=("$@")
fi

busybox=${BUSYBOX:-/bin/busybox}
vessel=${VESSEL:-$ROOT/build/vessel}
# a bare name (runc, crun) is looked up on PATH; a path is made absolute because the
# spec step runs in another directory
case "$vessel" in
*/*) vessel=$(realpath -m "$vessel") ;;
*) vessel=$(command -v "$vessel") || die "runtime '$VESSEL' not found on PATH" ;;
esac
[ -x "$vessel" ] || die "runtime not found at $vessel (run make, or set VESSEL)"
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
# the dynamic busybox package installs the same path; its loader is not in the rootfs
ldd_out=$(LC_ALL=C ldd "$busybox" 2>&1 || true)
[[ $ldd_out == *"not a dynamic executable"* ]] ||
	die "$busybox is dynamically linked (apt-get install busybox-static)"

mkdir -p "$dir"
dir=$(realpath "$dir")
rootfs=$dir/rootfs
# a demo and a test may build the same bundle at once
exec 9>"$dir/.lock"
flock 9

# never delete across a mount point (a container's /proc left mounted, say)
if awk -v d="$rootfs" '$5 == d || index($5, d "/") == 1 { f = 1 } END { exit !f }' \
	/proc/self/mountinfo; then
	die "something is mounted under $rootfs; unmount it first (umount -R $rootfs)"
fi

self_sum=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
rootfs_stamp="$self_sum $(stat -Lc '%s %Y' "$busybox")"
if [ "$(cat "$dir/.rootfs.stamp" 2>/dev/null)" != "$rootfs_stamp" ] ||
	[ ! -x "$rootfs/bin/busybox" ]; then
	rm -rf "$rootfs" "$dir/.rootfs.stamp" "$dir/.config.stamp"
	mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,root,home,mnt,run,tmp,var/tmp}
	chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
	chmod 700 "$rootfs/root"
	cp "$busybox" "$rootfs/bin/busybox"
	# absolute targets: they resolve inside the container's root
	"$busybox" --list-full | while read -r applet; do
		case "$applet" in linuxrc | "") continue ;; esac
		[ -d "$rootfs/${applet%/*}" ] || mkdir -p "$rootfs/${applet%/*}"
		[ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
		>"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	echo vessel >"$rootfs/etc/hostname"
	echo "$rootfs_stamp" >"$dir/.rootfs.stamp"
fi

# NUL-separated so args with spaces or newlines survive into the stamp unchanged
args_sum=$(printf '%s\0' "$have_args" "${args[@]}" | sha256sum | cut -d' ' -f1)
config_stamp="$self_sum $vessel $(stat -Lc '%s %Y' "$vessel") $args_sum"
if [ "$(cat "$dir/.config.stamp" 2>/dev/null)" = "$config_stamp" ] && [ -f "$dir/config.json" ]; then
	exit 0
fi

spec_dir=$(mktemp -d "${TMPDIR:-/tmp}/mkbundle-spec.XXXXXX")
trap 'rm -rf "$spec_dir"' EXIT
if ! (cd "$spec_dir" && "$vessel" spec) >"$spec_dir/spec.log" 2>&1 ||
	[ ! -s "$spec_dir/config.json" ]; then
	cat "$spec_dir/spec.log" >&2
	die "\`$vessel spec\` wrote no config.json (until vessel's spec works, VESSEL=/usr/sbin/runc)"
fi

printf '%s\0' "${args[@]}" >"$spec_dir/args"
"$PYTHON" - "$spec_dir/config.json" "$spec_dir/args" "$have_args" "$dir/config.json" <<'EOF'
import json, os, sys

src, args_file, have_args, dst = sys.argv[1:]
with open(src) as f:
    c = json.load(f)
proc = c.setdefault("process", {})
proc["terminal"] = False
if have_args == "1":
    with open(args_file, "rb") as f:
        proc["args"] = [a.decode() for a in f.read().split(b"\0")[:-1]]
c["hostname"] = "vessel"
c.setdefault("root", {})["path"] = "rootfs"
tmp = dst + ".tmp"
with open(tmp, "w") as f:
    json.dump(c, f, indent="\t")
    f.write("\n")
os.replace(tmp, dst)
EOF
echo "$config_stamp" >"$dir/.config.stamp"
