#!/usr/bin/env bash
# Install what is missing, build rill and run every test, the way CI does:
#   release   RelWithDebInfo, -Werror: all tests
#   asan      AddressSanitizer + UndefinedBehaviorSanitizer: all tests
#   tsan      ThreadSanitizer: the tests labelled "threaded"
#   fuzz      clang + libFuzzer: each tests/fuzz/fuzz_*.c for RILL_FUZZ_SECONDS
#   install   cmake --install into a temporary prefix, then a C program built
#             with `pkg-config --cflags --libs rill` against it
# A failing configuration does not stop the others; the script exits non-zero
# if anything failed and ends with the line "N passed, N failed".
#
# Environment: RILL_JOBS (build jobs, default 2), RILL_BUILD_ROOT (where the
# build-ci-* dirs go, default the repo), RILL_CONFIGS (subset, e.g.
# "release asan"), RILL_FUZZ_SECONDS (default 20), RILL_CLEAN=1 (fresh build
# dirs), CTEST_PARALLEL_LEVEL (ctest's own; default 1).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"
# shellcheck source=scripts/deps.sh
. scripts/deps.sh
rill_deps test

jobs=${RILL_JOBS:-2}
broot=${RILL_BUILD_ROOT:-$root}
configs=${RILL_CONFIGS:-release asan tsan fuzz install}
fuzz_seconds=${RILL_FUZZ_SECONDS:-20}

passed=0
failed=0
summary=()   # one line per configuration, printed at the end

banner() { printf '\n======== %s ========\n' "$*"; }

# A step that is not a ctest test (configure, build, install check) counts as
# one failure when it fails, so the closing line never reads "0 failed" on a
# broken run.
step_failed() {
    echo "FAILED: $1" >&2
    failed=$((failed + 1))
}

# configure_build NAME DIR CMAKE-ARGS...: configure and build; 0 on success.
configure_build() {
    local name=$1 dir=$2
    shift 2
    if [ "${RILL_CLEAN:-0}" = 1 ]; then rm -rf "$dir"; fi
    echo "+ cmake -S $root -B $dir $*"
    if ! cmake -S "$root" -B "$dir" "$@"; then
        step_failed "$name: cmake configure"
        return 1
    fi
    echo "+ cmake --build $dir -j$jobs"
    if ! cmake --build "$dir" -j"$jobs"; then
        step_failed "$name: build"
        return 1
    fi
}

# run_ctest NAME DIR CTEST-ARGS...: run ctest, add its counts to the totals
# and record its summary line. With RILL_NO_TESTS_OK=1, "no tests" is fine.
run_ctest() {
    local name=$1 dir=$2 rc=0 line f t
    shift 2
    local log=$dir/ctest-$name.log
    echo "+ (cd $dir && ctest --output-on-failure $*)"
    (cd "$dir" && ctest --output-on-failure "$@") 2>&1 | tee "$log" || rc=$?
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n1 || true)
    if [ -n "$line" ]; then
        f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
        t=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
        passed=$((passed + t - f))
        failed=$((failed + f))
        summary+=("$name: $line")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            step_failed "$name: ctest exited $rc"
        fi
    elif grep -q 'No tests were found' "$log"; then
        if [ "${RILL_NO_TESTS_OK:-0}" = 1 ]; then
            echo "$name: no test matched, none ran"
            summary+=("$name: no test matched ($*), none ran")
        else
            step_failed "$name: ctest found no tests"
            summary+=("$name: ctest found no tests")
        fi
    else
        step_failed "$name: ctest exited $rc without a summary"
        summary+=("$name: ctest exited $rc without a summary")
    fi
}

cfg_release() {
    local d=$broot/build-ci-release
    configure_build release "$d" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRILL_WERROR=ON ||
        { summary+=("release: build failed"); return; }
    run_ctest release "$d"
}

cfg_asan() {
    local d=$broot/build-ci-asan
    configure_build asan "$d" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRILL_WERROR=ON \
        -DRILL_SANITIZE=address,undefined -DRILL_BENCH=OFF ||
        { summary+=("asan: build failed"); return; }
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest asan "$d"
}

cfg_tsan() {
    local d=$broot/build-ci-tsan
    configure_build tsan "$d" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRILL_WERROR=ON \
        -DRILL_SANITIZE=thread -DRILL_BENCH=OFF ||
        { summary+=("tsan: build failed"); return; }
    local opts="halt_on_error=1 second_deadlock_stack=1"
    if [ -f "$root/tests/tsan.supp" ]; then opts="$opts suppressions=$root/tests/tsan.supp"; fi
    TSAN_OPTIONS=$opts RILL_NO_TESTS_OK=1 run_ctest tsan "$d" -L threaded
}

cfg_fuzz() {
    if ! command -v clang >/dev/null; then
        echo "fuzz: clang not found, skipped"
        summary+=("fuzz: skipped (no clang)")
        return
    fi
    if ! compgen -G "$root/tests/fuzz/fuzz_*.c" >/dev/null; then
        echo "fuzz: no tests/fuzz/fuzz_*.c yet, none ran"
        summary+=("fuzz: no fuzz targets, none ran")
        return
    fi
    local d=$broot/build-ci-fuzz
    CC=clang CXX=clang++ configure_build fuzz "$d" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DRILL_WERROR=ON -DRILL_FUZZ=ON -DRILL_FUZZ_SECONDS="$fuzz_seconds" \
        -DRILL_TESTS=OFF -DRILL_EXAMPLES=OFF -DRILL_BENCH=OFF ||
        { summary+=("fuzz: build failed"); return; }
    run_ctest fuzz "$d" -L fuzz
}

cfg_install() {
    local d=$broot/build-ci-release
    if [ ! -f "$d/CMakeCache.txt" ]; then
        configure_build install "$d" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRILL_WERROR=ON ||
            { summary+=("install: build failed"); return; }
    fi
    if scripts/install_check.sh "$d"; then
        passed=$((passed + 1))
        summary+=("install: passed (headers, librill.so.0.2, rill.pc)")
    else
        step_failed "install check"
        summary+=("install: FAILED")
    fi
}

start_all=$SECONDS
times=()
for c in $configs; do
    if ! declare -F "cfg_$c" >/dev/null; then
        step_failed "unknown configuration '$c'"
        continue
    fi
    banner "$c"
    t0=$SECONDS
    "cfg_$c"
    times+=("$c $((SECONDS - t0)) s")
done

banner "summary"
for s in "${summary[@]}"; do echo "$s"; done
echo "times: ${times[*]}; total $((SECONDS - start_all)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
