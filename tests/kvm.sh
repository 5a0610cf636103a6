#!/usr/bin/env bash
# The KVM tests: the Criterion suite 'kvm' and the pytest tests marked `kvm`. They need a
# hardware-assisted /dev/kvm (kvm_intel or kvm_amd). Where this machine has one they run
# here; otherwise (no /dev/kvm, or kvm_pvm, where stock Linux cannot boot) they run inside
# the emulated KVM host, tests/kvmhost/run. Nothing is skipped either way.
#
# Usage: tests/kvm.sh BUILD_DIR [PYTEST_ARG...]      Env: PYTHON (default /usr/bin/python3)
# Without PYTEST_ARGs, in the emulated host, each test file gets a host of its own
# (VESSEL_KVM_FILES overrides the list).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:?usage: tests/kvm.sh BUILD_DIR [PYTEST_ARG...]}")
shift
PYTHON=${PYTHON:-/usr/bin/python3}

hardware_kvm() {
	{ [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

if ! hardware_kvm; then
	if [ "${VESSEL_KVMHOST:-}" = inside ]; then
		echo "tests/kvm.sh: inside the emulated KVM host, yet no usable kvm_amd /dev/kvm" >&2
		exit 1
	fi
	why="no /dev/kvm"
	if [ -d /sys/module/kvm_pvm ]; then
		why="/dev/kvm is kvm_pvm (no VT-x/AMD-V: stock Linux cannot boot)"
		[ -e /dev/kvm ] || why="kvm_pvm without a /dev/kvm"
	fi
	echo "== KVM tests: $why here, so they run inside the emulated KVM host (tests/kvmhost/run)"
	if [ $# -gt 0 ]; then # a developer's selection (-k ...): one host for all of it
		exec "$ROOT/tests/kvmhost/run" -- env VESSEL_KVMHOST=inside "$0" "$build" "$@"
	fi
	# The whole suite: the Criterion part, then each test file, each in a fresh emulated
	# host. Its kernel crashes or freezes now and then under long heavy runs (QEMU TCG's
	# nested SVM; docs/testing.md), and `run` starts a host once more when it does: one
	# file's host is short-lived and a restart repeats one file, not the whole suite.
	files=${VESSEL_KVM_FILES:-$(cd "$ROOT" && grep -l 'pytest.mark.kvm' tests/integration/test_*.py)}
	failed=
	"$ROOT/tests/kvmhost/run" -- env VESSEL_KVMHOST=inside VESSEL_KVM_PART=criterion "$0" "$build" ||
		failed="$failed criterion"
	for f in $files; do
		echo "== KVM tests: $f"
		"$ROOT/tests/kvmhost/run" -- env VESSEL_KVMHOST=inside VESSEL_KVM_PART=pytest "$0" "$build" "$f" ||
			failed="$failed $f"
	done
	if [ -n "$failed" ]; then
		echo "== KVM tests failed:$failed" >&2
		exit 1
	fi
	echo "== KVM tests: all passed"
	exit 0
fi
if [ "${VESSEL_KVMHOST:-}" = inside ]; then
	echo "== KVM tests: inside the emulated KVM host ($(uname -r), $(nproc) CPUs, kvm_amd)"
else
	echo "== KVM tests: on this machine's own $(basename "$(ls -d /sys/module/kvm_intel /sys/module/kvm_amd 2>/dev/null | head -1)")"
fi

part=${VESSEL_KVM_PART:-all}
if [ "$part" != pytest ]; then
	meson test -C "$build" --no-rebuild --print-errorlogs --suite kvm
	[ "$part" = criterion ] && exit 0
fi
cd "$ROOT"
if [ "$part" = pytest ]; then # "$@" is one test file
	VESSEL=$build/vessel exec "$PYTHON" -m pytest -q -rfEs -m kvm "$@"
fi
VESSEL=$build/vessel exec "$PYTHON" -m pytest -q -rfEs -m kvm "$@" tests/integration
