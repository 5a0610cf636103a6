#!/usr/bin/env bash
# Runs every libFuzzer harness built in BUILD_DIR (tests/fuzz/fuzz_*) for SECONDS each.
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS
#
# Seeds come from tests/fuzz/corpus/<name>/ (fuzz_seccomp -> corpus/seccomp/) and are only
# read; what the fuzzer finds goes to BUILD_DIR/fuzz/<name>/corpus, so the tree stays
# clean and a later run starts from there. tests/fuzz/<name>.dict is used when present.
# Any crash, leak, timeout or out-of-memory fails the run; the input is kept in
# BUILD_DIR/fuzz/<name>/ and the fuzzer's log named. Leaks inside third-party libraries
# are suppressed by tests/fuzz/lsan.supp.
set -uo pipefail

if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -lt 1 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)

shopt -s nullglob
harnesses=()
for f in "$build"/tests/fuzz/fuzz_*; do
	[ -f "$f" ] && [ -x "$f" ] && harnesses+=("$f")
done
if [ ${#harnesses[@]} -eq 0 ]; then
	echo "fuzz.sh: no harnesses in $build/tests/fuzz (configure with -Dfuzz=true)" >&2
	exit 1
fi

# Leaks inside third-party libraries we cannot fix, each explained in the file.
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

failed=0
for h in "${harnesses[@]}"; do
	name=$(basename "$h")
	name=${name#fuzz_}
	seeds=$root/tests/fuzz/corpus/$name
	work=$build/fuzz/$name
	mkdir -p "$work/corpus"
	args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192
		-print_final_stats=1 -artifact_prefix="$work/")
	[ -f "$root/tests/fuzz/$name.dict" ] && args+=(-dict="$root/tests/fuzz/$name.dict")
	dirs=("$work/corpus")
	if [ -d "$seeds" ]; then
		dirs+=("$seeds")
	else
		echo "fuzz.sh: $name: no seeds in tests/fuzz/corpus/$name/, starting empty" >&2
	fi
	log=$work/fuzz.log
	echo "fuzz: $name for ${seconds}s"
	# The harness's own timeout backs up -max_total_time should an input hang the process.
	timeout --kill-after=10 $((seconds + 60)) "$h" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
	if [ $rc -ne 0 ]; then
		echo "fuzz: $name FAILED (exit $rc) after ${runs:-?} runs; log: $log" >&2
		grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -5 >&2
		failed=1
	else
		echo "fuzz: $name ok: ${runs:-?} runs, ${cov:-cov: ?}, corpus $(ls "$work/corpus" | wc -l) files"
	fi
done
exit $failed
