#!/usr/bin/env bash
# Builds vessel's default guest image from Debian packages only: Debian's cloud kernel and
# an initramfs with busybox-static, the virtio modules and images/init. Nothing is installed
# into the host: the .debs are fetched with `apt-get download` and unpacked with `dpkg -x`.
#
# Output (images/out/, git-ignored): vmlinuz (the bzImage), vmlinux (the uncompressed ELF,
# booted through its PVH note), initrd.img (cpio newc, gzip). The .debs are cached in
# images/out/debs. Idempotent: quick when the stamp (kernel version, package versions, this
# script and init) matches what is already built.
#
# Usage: images/build.sh [--force]     Env: VESSEL_IMAGES_OUT (default images/out)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${VESSEL_IMAGES_OUT:-$HERE/out}
DEBS=$OUT/debs
WORK=$OUT/work
FLAVOUR=cloud-amd64
# What the guest needs to find its devices: virtio over MMIO (declared in the DSDT), block,
# net, entropy, vsock, the balloon and virtio-fs (fuse comes with it). Their dependencies
# come from modules.dep.
MODULES=(virtio_mmio virtio_blk virtio_net virtio_rng vmw_vsock_virtio_transport virtio_balloon virtiofs)

die() {
	echo "images/build.sh: $*" >&2
	exit 1
}

# shellcheck source=../scripts/debs.sh
. "$HERE/../scripts/debs.sh"

# Quick path without asking apt (seconds on a busy machine): nothing changed since the last
# build, neither this script, nor init, nor apt's package lists.
if [ "${1:-}" != --force ] && [ -f "$OUT/stamp" ] && [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/vmlinux" ] &&
	[ -s "$OUT/initrd.img" ] && [ "$OUT/stamp" -nt "$0" ] && [ "$OUT/stamp" -nt "$HERE/init" ] &&
	[ -z "$(find /var/lib/apt/lists -maxdepth 1 -newer "$OUT/stamp" -print -quit 2>/dev/null)" ]; then
	exit 0
fi

kpkg=$(debs_kernel_package "$FLAVOUR")
[ -n "$kpkg" ] || die "cannot resolve linux-image-$FLAVOUR (run apt-get update)"
kver=${kpkg#linux-image-}
kpkg_version=$(debs_version "$kpkg")
bb_version=$(debs_version busybox-static)
if [ -z "$kpkg_version" ] || [ -z "$bb_version" ]; then
	die "apt-cache knows no version of $kpkg or busybox-static"
fi

stamp="$kver $kpkg_version busybox-static $bb_version $(cat "$0" "$HERE/init" "$HERE/../scripts/debs.sh" | sha256sum | cut -c1-16)"
if [ "${1:-}" != --force ] && [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ] &&
	[ -s "$OUT/vmlinuz" ] && [ -s "$OUT/vmlinux" ] && [ -s "$OUT/initrd.img" ]; then
	touch "$OUT/stamp"
	exit 0
fi

"$HERE/../scripts/deps.sh" build images
echo "images: building the guest image for $kver" >&2
mkdir -p "$DEBS"

kdeb=$(debs_fetch "$DEBS" "$kpkg" "$kpkg_version") || die "cannot fetch $kpkg"
bbdeb=$(debs_fetch "$DEBS" busybox-static "$bb_version") || die "cannot fetch busybox-static"

rm -rf "$WORK"
mkdir -p "$WORK/kernel" "$WORK/busybox"
dpkg -x "$kdeb" "$WORK/kernel"
dpkg -x "$bbdeb" "$WORK/busybox"
K=$WORK/kernel
[ -f "$K/boot/vmlinuz-$kver" ] || die "$kdeb has no boot/vmlinuz-$kver"
# The package ships no modules.dep (its postinst runs depmod): make one for the tree.
depmod -b "$K" "$kver"

# ---- vmlinux: the bzImage's compressed payload, decompressed with Debian's tool.
extract_vmlinux() {
	local bz=$1 out=$2 magic tool
	case $(grep -E '^CONFIG_KERNEL_(GZIP|XZ|ZSTD|LZ4|LZMA|LZO|BZIP2)=y' "$K/boot/config-$kver") in
	*ZSTD*) magic='\x28\xb5\x2f\xfd' tool='zstd -dcq' ;;
	*XZ*) magic='\xfd\x37\x7a\x58\x5a\x00' tool='xz -dcq' ;;
	*GZIP*) magic='\x1f\x8b\x08' tool='gzip -dcq' ;;
	*LZ4*) magic='\x02\x21\x4c\x18' tool='lz4 -dcq' ;;
	*) die "unsupported kernel compression in config-$kver" ;;
	esac
	# Try every place the magic occurs (a stray match may come first); keep the first ELF.
	local off
	for off in $(LC_ALL=C grep -abo "$(printf "$magic")" "$bz" | cut -d: -f1); do
		# trailing bytes after the stream (the appended size) make the tools complain
		tail -c +$((off + 1)) "$bz" | $tool >"$out.tmp" 2>/dev/null || true
		if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			mv "$out.tmp" "$out"
			return 0
		fi
	done
	rm -f "$out.tmp"
	die "no decompressible ELF payload found in $bz"
}

# ---- initramfs
R=$WORK/root
mkdir -p "$R"/{bin,dev,etc,proc,sys,tmp,root,lib/modules/"$kver"}
cp "$WORK/busybox/bin/busybox" "$R/bin/busybox"
for applet in $("$R/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done
ln -s bin "$R/sbin"
# the kernel opens /dev/console for init before anything is mounted (needs root; init
# falls back to reopening it from devtmpfs)
mknod -m 600 "$R/dev/console" c 5 1 2>/dev/null || true
install -m 755 "$HERE/init" "$R/init"

# The modules and what modules.dep says they need, dependencies first.
dep=$K/lib/modules/$kver/modules.dep
mapfile -t want < <(debs_module_closure "$dep" "${MODULES[@]}") || die "module closure failed"
: >"$R/lib/modules/$kver/modules.dep"
: >"$R/etc/modules"
for p in "${want[@]}"; do
	mkdir -p "$R/lib/modules/$kver/$(dirname "$p")"
	cp "$K/lib/modules/$kver/$p" "$R/lib/modules/$kver/$p"
	grep -E "^${p//./\\.}:" "$dep" >>"$R/lib/modules/$kver/modules.dep"
	name=$(basename "$p")
	echo "${name%%.ko*}" >>"$R/etc/modules"
done
# busybox's modprobe wants the file compressed modules would need a tool for: keep it plain
if grep -q '\.ko\.' "$R/lib/modules/$kver/modules.dep"; then
	die "compressed modules in $kver: the initramfs would need them decompressed"
fi

mkdir -p "$OUT"
cp "$K/boot/vmlinuz-$kver" "$OUT/vmlinuz.tmp"
extract_vmlinux "$OUT/vmlinuz.tmp" "$OUT/vmlinux"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9 -n) >"$OUT/initrd.img.tmp"
mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
echo "$kver" >"$OUT/kernel-version"
echo "images: $OUT/{vmlinuz,vmlinux,initrd.img} for $kver, modules: $(tr '\n' ' ' <"$R/etc/modules")" >&2
rm -rf "$WORK"
echo "$stamp" >"$OUT/stamp"
