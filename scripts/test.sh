#!/usr/bin/env bash
# test.sh: the whole test suite — unit (plain, valgrind, ASan+UBSan, TSan), headers, integration
# against real qemu-img and a real libvirtd + QEMU (the threaded paths under TSan too), and a
# bounded fuzz run. `.ci/run` calls exactly this.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${VP_FUZZ_SECONDS:-40}
passed=0
failed=0
failures=()

step() { printf '\n==== %s ====\n' "$*"; }
record() { # record NAME RC
	if [[ $2 -eq 0 ]]; then
		passed=$((passed + 1))
		echo "PASS: $1"
	else
		failed=$((failed + 1))
		failures+=("$1")
		echo "FAIL: $1 (exit $2)"
	fi
}
die() { echo "test.sh: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
# The failed ctest tests of a build dir and their FAIL lines, kept for the closing summary (a
# long run's log is often read from its end only).
details=()
ctest_failures() { # ctest_failures DIR
	local list=$1/Testing/Temporary/LastTestsFailed.log log=$1/Testing/Temporary/LastTest.log t
	[[ -s $list ]] || return 0
	while IFS=: read -r _ t; do
		details+=("$1: $t")
		while IFS= read -r l; do details+=("    $l"); done < <(
			awk -v t="$t" '$0 ~ "^[0-9]+/[0-9]+ Testing: " t "$" { on = 1; next }
				on && /^[0-9]+\/[0-9]+ Testing: / { on = 0 }
				on && /FAIL|Error|error:|Assertion|Segmentation|terminate called/' "$log" | head -15)
	done <"$list"
}

step "dependencies"
bash scripts/deps.sh --tests || die "installing dependencies failed"

build() { # build DIR [cmake args...]
	local dir=$1
	shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTS=ON "$@" >"$dir/cmake.log" 2>&1 ||
		{ cat "$dir/cmake.log"; return 1; }
	cmake --build "$dir" -j "$JOBS" >"$dir/build.log" 2>&1 || { tail -50 "$dir/build.log"; return 1; }
}

step "build (warnings are errors; public headers compile alone)"
mkdir -p build
build build
record "build" $?
[[ -x build/bin/vdipool ]] || die "the build failed, nothing to test"

# The release, ASan+UBSan and TSan trees build in the background, niced, while the unit and
# integration tests run (those mostly wait on guests, daemons and disks): a CI run is about five
# minutes shorter. Their results are recorded after the integration tests.
mkdir -p build-release build-asan build-tsan
(
	renice -n 19 -p "$BASHPID" >/dev/null 2>&1 || true
	rc=0
	{ cmake -S . -B build-release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTS=OFF >build-release/cmake.log 2>&1 &&
		cmake --build build-release -j "$JOBS" --target vdipool >build-release/build.log 2>&1; } || rc=1
	echo $rc >build-release/rc
	build build-asan -DENABLE_SANITIZERS=ON >build-asan/bg.log 2>&1; echo $? >build-asan/rc
	build build-tsan -DENABLE_TSAN=ON >build-tsan/bg.log 2>&1; echo $? >build-tsan/rc
) </dev/null &
bg_builds=$!

step "unit tests"
(cd build && ctest -L unit --output-on-failure -j "$JOBS")
record "unit tests" $?

step "libvirt daemons"
if [[ -x scripts/libvirt-up.sh ]] || [[ -f scripts/libvirt-up.sh ]]; then
	bash scripts/libvirt-up.sh
	record "libvirt up" $?
fi

# Two at a time: a test mostly waits on a guest, sshd, Ceph or the disk. Tests that boot guests,
# or that use the sshd test hosts, never run beside another of their kind (RESOURCE_LOCKs read
# from each test's source by tests/CMakeLists.txt); the /dev/kvm tests run alone.
step "integration tests (real qemu-img, real libvirtd + QEMU under TCG, two at a time)"
(cd build && ctest -L integration --output-on-failure -j "${VP_ITEST_JOBS:-2}")
rc=$?
record "integration tests" $rc
((rc == 0)) || ctest_failures build

step "the background builds"
wait "$bg_builds"
step "a release build (no tests) carries no test hooks"
if [[ $(cat build-release/rc 2>/dev/null) == 0 ]]; then
	! grep -q -a VDIPOOL_TEST_ build-release/libvdipool.so
	record "release build without fault injection" $?
else
	tail -20 build-release/build.log
	record "release build" 1
fi

step "unit tests under valgrind (no leaks, no errors)"
vg_rc=0
for t in build/tests/test_*; do
	[[ -x "$t" ]] || continue
	name=$(basename "$t")
	if ! (cd build && env VP_SOURCE_DIR="$ROOT" VP_BUILD_DIR="$ROOT/build" VP_TEST_DATA="$ROOT/tests/data" \
		VDIPOOL_PLUGIN_PATH="$ROOT/build/plugins" VDIPOOL_TEMPLATE_PATH="$ROOT/templates" \
		VDIPOOL_CLI="$ROOT/build/bin/vdipool" VP_UNDER_VALGRIND=1 \
		valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
		--suppressions="$ROOT/tests/valgrind.supp" \
		--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
		"$ROOT/$t" >"$ROOT/build/valgrind-$name.log" 2>&1); then
		echo "valgrind: $name failed; last lines:"
		tail -40 "build/valgrind-$name.log"
		vg_rc=1
	else
		echo "valgrind: $name clean"
	fi
done
record "valgrind" $vg_rc

step "ASan + UBSan build and unit tests"
if [[ $(cat build-asan/rc 2>/dev/null) == 0 ]]; then
	(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest -L unit --output-on-failure -j "$JOBS")
	record "sanitizer unit tests" $?
else
	cat build-asan/bg.log
	record "sanitizer build" 1
fi

step "ThreadSanitizer build and unit tests"
TSAN_ENV=(TSAN_OPTIONS="halt_on_error=0 exitcode=66 suppressions=$ROOT/tests/tsan.supp")
if [[ $(cat build-tsan/rc 2>/dev/null) == 0 ]]; then
	(cd build-tsan && env "${TSAN_ENV[@]}" ctest -L unit --output-on-failure -j "$JOBS")
	record "tsan unit tests" $?
else
	cat build-tsan/bg.log
	record "tsan build" 1
fi

step "integration tests of the threaded paths under ThreadSanitizer (apply, rollout, updates, hosts in parallel)"
if [[ -x build-tsan/bin/vdipool ]]; then
	(cd build-tsan && env "${TSAN_ENV[@]}" ctest -L integration -R 'test_pool$|test_rollout|test_pool_update|test_fleet_rebalance' \
		--output-on-failure)
	rc=$?
	record "tsan integration tests" $rc
	((rc == 0)) || ctest_failures build-tsan
fi

step "fuzzing (libFuzzer + ASan, ${FUZZ_SECONDS}s per target)"
if [[ -f tests/fuzz/run.sh ]]; then
	FUZZ_BUILD_DIR=$ROOT/build-fuzz bash tests/fuzz/run.sh "$FUZZ_SECONDS"
	record "fuzz" $?
fi

echo
if ((failed > 0)); then
	echo "failed steps: ${failures[*]}"
	((${#details[@]} == 0)) || printf '%s\n' "failed tests:" "${details[@]}"
fi
echo "${passed} passed, ${failed} failed"
((failed == 0))
