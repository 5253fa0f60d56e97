#!/bin/bash
# run.sh: build the libFuzzer targets with clang (ASan+UBSan) and fuzz, for a bounded time, the qcow2
# reader (the given seconds) and the spec parser (half of them). Fails on a crash.
# Usage: tests/fuzz/run.sh [seconds]   (or FUZZ_TIME=seconds; default 60).
# Env: FUZZ_BUILD_DIR (default build-qcow2-fuzz), FUZZ_JOBS (parallel fuzzing jobs, default 1).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
time=${1:-${FUZZ_TIME:-60}}
build=${FUZZ_BUILD_DIR:-$src/build-qcow2-fuzz}
seeds=$src/tests/fuzz/corpus/qcow2

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
		"$src/tests/fuzz/fuzz_qcow2.c" "$src/lib/qcow2_read.c" "$src/lib/error.c" \
		"$src"/lib/util/*.c -o "$fuzzer"
fi

# New inputs go to a scratch corpus: the committed seeds stay as they are.
work=$(mktemp -d /tmp/vp-fuzz-qcow2.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
echo "fuzzing the qcow2 reader for ${time}s (seeds: $seeds)"
if ! "$fuzzer" -max_total_time="$time" -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
	-artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/corpus" "$seeds"; then
	mkdir -p "$build/fuzz-crashes"
	cp -a "$work/artifacts/." "$build/fuzz-crashes/" 2>/dev/null || true
	echo "fuzz_qcow2 FAILED: reproducers kept in $build/fuzz-crashes" >&2
	exit 1
fi
echo "fuzz_qcow2: no crash in ${time}s"

# The spec parser: any bytes give a spec or one positioned error, never a crash.
spec_time=$((time / 2 > 10 ? time / 2 : 10))
if [[ -x $build/fuzz/fuzz_spec ]]; then
	mkdir -p "$work/spec-corpus"
	echo "fuzzing the spec parser for ${spec_time}s (seeds: $src/tests/fuzz/corpus/spec)"
	if ! "$build/fuzz/fuzz_spec" -max_total_time="$spec_time" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$work/artifacts/" -print_final_stats=1 "$work/spec-corpus" "$src/tests/fuzz/corpus/spec"; then
		mkdir -p "$build/fuzz-crashes"
		cp -a "$work/artifacts/." "$build/fuzz-crashes/" 2>/dev/null || true
		echo "fuzz_spec FAILED: reproducers kept in $build/fuzz-crashes" >&2
		exit 1
	fi
	echo "fuzz_spec: no crash in ${spec_time}s"
fi
