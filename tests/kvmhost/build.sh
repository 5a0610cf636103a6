#!/usr/bin/env bash
# Builds the emulated KVM host's kernel and initramfs from Debian packages only: Debian's
# generic kernel (it has kvm-amd, 9p and virtio-pci as modules; the cloud kernel has no 9p)
# and busybox-static, fetched with `apt-get download` and unpacked with `dpkg -x`.
#
# Output (tests/kvmhost/out/, git-ignored): vmlinuz, initrd.img (busybox, the modules that
# mount the host's files and give /dev/kvm, ./init), modules/ (the kernel's whole module
# tree with its modules.dep, which the host's kmod uses inside), debs/ (the cache).
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

# shellcheck source=../../scripts/debs.sh
. "$ROOT/scripts/debs.sh"

die() {
	echo "kvmhost/build.sh: $*" >&2
	exit 1
}

up_to_date() {
	[ -f "$OUT/stamp" ] && [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initrd.img" ] && [ -d "$OUT/modules" ]
}

# Quick path without asking apt: nothing changed since the last build.
if [ "${1:-}" != --force ] && up_to_date && [ "$OUT/stamp" -nt "$0" ] && [ "$OUT/stamp" -nt "$HERE/init" ] &&
	[ "$OUT/stamp" -nt "$ROOT/scripts/debs.sh" ] &&
	[ -z "$(find /var/lib/apt/lists -maxdepth 1 -newer "$OUT/stamp" -print -quit 2>/dev/null)" ]; then
	exit 0
fi

"$ROOT/scripts/deps.sh" build images
kpkg=$(debs_kernel_package "$FLAVOUR")
[ -n "$kpkg" ] || die "cannot resolve linux-image-$FLAVOUR (run apt-get update)"
kver=${kpkg#linux-image-}
kpkg_version=$(debs_version "$kpkg")
bb_version=$(debs_version busybox-static)
[ -n "$kpkg_version" ] && [ -n "$bb_version" ] || die "apt-cache knows no version of $kpkg or busybox-static"

stamp="$kver $kpkg_version busybox-static $bb_version $(cat "$0" "$HERE/init" "$ROOT/scripts/debs.sh" | sha256sum | cut -c1-16)"
if [ "${1:-}" != --force ] && up_to_date && [ "$(cat "$OUT/stamp")" = "$stamp" ]; then
	touch "$OUT/stamp"
	exit 0
fi

echo "kvmhost: building the emulated KVM host's kernel and initramfs ($kver)" >&2
kdeb=$(debs_fetch "$OUT/debs" "$kpkg" "$kpkg_version") || die "cannot fetch $kpkg"
bbdeb=$(debs_fetch "$OUT/debs" busybox-static "$bb_version") || die "cannot fetch busybox-static"

WORK=$OUT/work
rm -rf "$WORK" "$OUT/modules" "$OUT/stamp"
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
