#!/bin/bash
# run.sh: build the libFuzzer targets with clang (ASan+UBSan) and fuzz, for a bounded time, the qcow2
# reader (the given seconds) and the spec parser (half of them). Fails on a crash.
# Usage: tests/fuzz/run.sh [seconds]   (or FUZZ_TIME=seconds; default 60).
# Env: FUZZ_BUILD_DIR (default build-qcow2-fuzz), FUZZ_JOBS (parallel fuzzing jobs, default 1).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
time=${1:-${FUZZ_TIME:-60}}
build=${FUZZ_BUILD_DIR:-$src/build-qcow2-fuzz}

# The CMake way first (-DENABLE_FUZZ=ON); when some other library file does not
# build with clang, compile the target from the few sources it needs instead.
fuzzer=$build/fuzz/fuzz_qcow2
if ! { CC=clang cmake -S "$src" -B "$build" -DENABLE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_FLAGS=-Wno-unknown-warning-option >/dev/null &&
	cmake --build "$build" --target fuzz_qcow2 fuzz_spec -j"$(nproc)" >"$build/fuzz-build.log" 2>&1; }; then
	echo "warning: CMake fuzz build failed (see $build/fuzz-build.log); building fuzz_qcow2 directly" >&2
	mkdir -p "$build/fuzz"
	clang -std=gnu11 -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unknown-warning-option \
		-D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DVP_VERSION_STRING='"fuzz"' \
		-fsanitize=fuzzer,address,undefined -I"$src/lib/include" -I"$src/lib" \
		"$src/tests/fuzz/fuzz_qcow2.c" "$src/lib/qcow2/qcow2_read.c" "$src/lib/core/error.c" \
		"$src"/lib/util/*.c -o "$fuzzer"
fi

# New inputs go to a scratch corpus: the committed seeds stay as they are.
work=$(mktemp -d /tmp/vp-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/artifacts"

# fuzz TARGET WHAT SECONDS MAX_LEN: runs one target from its seeds; a crash keeps the reproducers.
fuzz() {
	local target=$1 what=$2 secs=$3 max_len=$4 seeds=$src/tests/fuzz/corpus/${1#fuzz_}
	mkdir -p "$work/$target"
	echo "fuzzing $what for ${secs}s (seeds: $seeds)"
	if ! "$build/fuzz/$target" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/$target" "$seeds"; then
		mkdir -p "$build/fuzz-crashes"
		cp -a "$work/artifacts/." "$build/fuzz-crashes/" 2>/dev/null || true
		echo "$target FAILED: reproducers kept in $build/fuzz-crashes" >&2
		exit 1
	fi
	echo "$target: no crash in ${secs}s"
}

fuzz fuzz_qcow2 "the qcow2 reader" "$time" 70000
# The spec parser: any bytes give a spec or one positioned error, never a crash.
if [[ -x $build/fuzz/fuzz_spec ]]; then
	fuzz fuzz_spec "the spec parser" $((time / 2 > 10 ? time / 2 : 10)) 8192
fi
