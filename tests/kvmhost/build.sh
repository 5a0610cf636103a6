#!/usr/bin/env bash
# Builds the emulated KVM host's kernel and initramfs from Debian packages only: Debian's
# generic kernel (it has kvm-amd, 9p and virtio-pci as modules; the cloud kernel has no 9p)
# and busybox-static, fetched with `apt-get download` and unpacked with `dpkg -x`.
#
# Output (tests/kvmhost/out/, git-ignored): vmlinuz, initrd.img (busybox, the modules that
# mount the host's files and give /dev/kvm, ./init), modules/ (the kernel's whole module
# tree with its modules.dep, which the host's kmod uses inside), qemu/ (QEMU_SUITE's QEMU,
# unpacked), debs/ (the cache), apt/ (QEMU_SUITE's package list).
# Quick when the stamp (kernel and busybox versions, these scripts) matches.
#
# Usage: tests/kvmhost/build.sh [--force]     Env: VESSEL_KVMHOST_OUT (default out/)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${VESSEL_KVMHOST_OUT:-$HERE/out}
FLAVOUR=amd64
# virtio-pci and 9p for the host's files, overlay to make them writable, kvm-amd for
# /dev/kvm (QEMU's TCG emulates AMD SVM with nested paging, not VT-x), virtio-rng so the
# entropy pool fills at once, virtio-blk and ext4 for the scratch disk on /tmp (tmpfs has no
# O_DIRECT before 6.6), and what the VM tests use: taps, loop devices, veth and bridges
# (loaded here: the kernel's own module requests go to the initramfs, which has no kmod)
MODULES=(virtio_pci 9pnet_virtio 9p overlay kvm_amd virtio_rng virtio_blk crc32c_generic ext4 tun loop veth bridge)

# The emulated host's QEMU comes from Debian's bookworm-backports (10.x), unpacked into
# out/qemu, not installed: QEMU 7.2 (bookworm's) updates the accessed/dirty bits of page
# tables in its multi-threaded TCG with a plain read-modify-write (atomic since QEMU 8.0),
# which races with the emulated host's KVM changing the nested page tables on the other
# CPU, and with the guest's own page-table updates. Guests inside reset themselves (triple
# fault) now and then from it (docs/testing.md). The system's QEMU stays what the tests
# compare vessel with.
QEMU_SUITE=bookworm-backports
QEMU_PACKAGES=(qemu-system-x86 qemu-system-data seabios)

# shellcheck source=../../scripts/debs.sh
. "$ROOT/scripts/debs.sh"

die() {
	echo "kvmhost/build.sh: $*" >&2
	exit 1
}

up_to_date() {
	[ -f "$OUT/stamp" ] && [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.img" ] && [ -d "$OUT/modules" ] &&
		[ -x "$OUT/qemu/usr/bin/qemu-system-x86_64" ]
}

# Quick path without asking apt: nothing changed since the last build.
if [ "${1:-}" != --force ] && up_to_date && [ "$OUT/stamp" -nt "$0" ] && [ "$OUT/stamp" -nt "$HERE/init" ] &&
	[ "$OUT/stamp" -nt "$ROOT/scripts/debs.sh" ] &&
	[ -z "$(find /var/lib/apt/lists -maxdepth 1 -newer "$OUT/stamp" -print -quit 2>/dev/null)" ]; then
	exit 0
fi

"$ROOT/scripts/deps.sh" build images

# apt with only QEMU_SUITE's package list, kept in out/apt: nothing in the host's apt
# configuration changes. Prints the versions of QEMU_PACKAGES there, one per line.
APT=(-o "Dir::Etc::sourcelist=$OUT/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
	-o "Dir::State::Lists=$OUT/apt/lists" -o "Dir::Cache=$OUT/apt/cache" -o Debug::NoLocking=1)
qemu_versions() {
	mkdir -p "$OUT/apt/lists/partial" "$OUT/apt/cache/archives/partial"
	echo "deb http://deb.debian.org/debian $QEMU_SUITE main" >"$OUT/apt/sources.list"
	apt-get "${APT[@]}" update -q >/dev/null 2>&1 || return 1
	local p v
	for p in "${QEMU_PACKAGES[@]}"; do
		v=$(apt-cache "${APT[@]}" show "$p" 2>/dev/null | sed -n 's/^Version: //p' | grep '~bpo' | sort -V | tail -1)
		[ -n "$v" ] || return 1
		echo "$v"
	done
}
kpkg=$(debs_kernel_package "$FLAVOUR")
[ -n "$kpkg" ] || die "cannot resolve linux-image-$FLAVOUR (run apt-get update)"
kver=${kpkg#linux-image-}
kpkg_version=$(debs_version "$kpkg")
bb_version=$(debs_version busybox-static)
[ -n "$kpkg_version" ] && [ -n "$bb_version" ] || die "apt-cache knows no version of $kpkg or busybox-static"

mapfile -t qemu_vers < <(qemu_versions) || true
[ ${#qemu_vers[@]} = ${#QEMU_PACKAGES[@]} ] ||
	die "cannot reach Debian's $QEMU_SUITE for ${QEMU_PACKAGES[*]} (the emulated host's QEMU)"

stamp="$kver $kpkg_version busybox-static $bb_version qemu ${qemu_vers[*]} $(cat "$0" "$HERE/init" "$ROOT/scripts/debs.sh" | sha256sum | cut -c1-16)"
if [ "${1:-}" != --force ] && up_to_date && [ "$(cat "$OUT/stamp")" = "$stamp" ]; then
	touch "$OUT/stamp"
	exit 0
fi

echo "kvmhost: building the emulated KVM host's kernel and initramfs ($kver)" >&2
kdeb=$(debs_fetch "$OUT/debs" "$kpkg" "$kpkg_version") || die "cannot fetch $kpkg"
bbdeb=$(debs_fetch "$OUT/debs" busybox-static "$bb_version") || die "cannot fetch busybox-static"

qdebs=()
for i in "${!QEMU_PACKAGES[@]}"; do
	d=$(debs_fetch "$OUT/debs" "${QEMU_PACKAGES[i]}" "${qemu_vers[i]}" "${APT[@]}") ||
		die "cannot fetch ${QEMU_PACKAGES[i]} from $QEMU_SUITE"
	qdebs+=("$d")
done

WORK=$OUT/work
rm -rf "$WORK" "$OUT/modules" "$OUT/stamp" "$OUT/qemu"
mkdir -p "$OUT/qemu"
for d in "${qdebs[@]}"; do dpkg -x "$d" "$OUT/qemu"; done
"$OUT/qemu/usr/bin/qemu-system-x86_64" --version >/dev/null ||
	die "the unpacked $QEMU_SUITE QEMU does not run here (a library missing? ldd $OUT/qemu/usr/bin/qemu-system-x86_64)"
mkdir -p "$WORK/kernel" "$WORK/busybox"
dpkg -x "$kdeb" "$WORK/kernel"
dpkg -x "$bbdeb" "$WORK/busybox"
K=$WORK/kernel
[ -f "$K/boot/vmlinuz-$kver" ] || die "$kdeb has no boot/vmlinuz-$kver"
# the package ships no modules.dep (its postinst runs depmod)
depmod -b "$K" "$kver"
dep=$K/lib/modules/$kver/modules.dep

R=$WORK/root
mkdir -p "$R"/{bin,dev,proc,sys,mnt,lib/modules}
cp "$WORK/busybox/bin/busybox" "$R/bin/busybox"
for applet in $("$R/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done
ln -s bin "$R/sbin"
install -m 755 "$HERE/init" "$R/init"
# init loads these with insmod, in this order: no modules.dep, no modprobe needed
mapfile -t closure < <(debs_module_closure "$dep" "${MODULES[@]}") || die "module closure failed"
for p in "${closure[@]}"; do
	case $p in *.ko) ;; *) die "compressed module $p: busybox insmod wants it plain" ;; esac
	cp "$K/lib/modules/$kver/$p" "$R/lib/modules/"
	basename "$p" >>"$R/lib/modules/order"
done

mkdir -p "$OUT"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1 -n) >"$OUT/initrd.img.tmp"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
cp "$K/boot/vmlinuz-$kver" "$OUT/vmlinuz"
mkdir -p "$OUT/modules/lib"
mv "$K/lib/modules" "$OUT/modules/lib/modules"
echo "$kver" >"$OUT/kernel-version"
rm -rf "$WORK"
echo "$stamp" >"$OUT/stamp"
echo "kvmhost: $OUT/{vmlinuz,initrd.img,modules} for $kver" >&2
