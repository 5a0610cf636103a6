# shellcheck shell=bash
# Sourced by the scripts that build a kernel image from Debian's packages (images/build.sh,
# tests/kvmhost/build.sh): resolve a kernel metapackage, fetch a .deb once into a cache.
# Nothing here installs anything into the host.

# The metapackage linux-image-FLAVOUR depends on the versioned kernel package: that names
# the kernel. A fresh machine may have no package lists yet: as root, fetch them once and
# look again. Prints nothing when apt knows no such package.
debs_kernel_package() {
	local pkg
	pkg=$(apt-cache depends "linux-image-$1" 2>/dev/null |
		sed -n "s/^ *Depends: \(linux-image-[0-9].*-$1\)$/\1/p" | head -1)
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
		apt-get update -q >/dev/null 2>&1 || true
		pkg=$(apt-cache depends "linux-image-$1" 2>/dev/null |
			sed -n "s/^ *Depends: \(linux-image-[0-9].*-$1\)$/\1/p" | head -1)
	fi
	echo "$pkg"
}

debs_version() {
	apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -1
}

# debs_fetch CACHE PACKAGE VERSION [APT-OPTION...]: prints the path of PACKAGE_VERSION's
# .deb in CACHE, downloading it the first time (older versions of the package are dropped).
# apt-get download names files <name>_<version, ':' escaped as %3a>_<arch>.deb
debs_fetch() {
	local cache=$1 pkg=$2 ver=$3 f
	shift 3
	mkdir -p "$cache"
	for f in "$cache/${pkg}_${ver//:/%3a}_"*.deb; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	rm -f "$cache/${pkg}"_*.deb
	if ! (cd "$cache" && apt-get "$@" download -q "$pkg=$ver" >/dev/null 2>&1); then
		echo "apt-get download $pkg=$ver failed" >&2
		return 1
	fi
	for f in "$cache/${pkg}_${ver//:/%3a}_"*.deb; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	echo "apt-get download $pkg=$ver left no .deb in $cache" >&2
	return 1
}

# debs_module_closure MODULES_DEP MODULE...: the .ko paths (relative to the modules
# directory) that loading MODULE... takes, dependencies first, each once. modules.dep lists
# a module's needs with the one to load first last; names may use '-' where the module
# name uses '_'.
debs_module_closure() {
	local dep=$1 m line i
	shift
	local -a want=() needs
	for m in "$@"; do
		line=$(grep -E "/${m//_/[-_]}\.ko(\.[a-z]+)?:" "$dep" | head -1) || {
			echo "module $m not in $dep" >&2
			return 1
		}
		read -r -a needs <<<"${line#*:}"
		for ((i = ${#needs[@]} - 1; i >= 0; i--)); do want+=("${needs[i]}"); done
		want+=("${line%%:*}")
	done
	printf '%s\n' "${want[@]}" | awk '!seen[$0]++'
}
