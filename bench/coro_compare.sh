#!/bin/sh
# Runs bench_coro and bench/coro_baseline.py on this machine and prints their
# lines, then the ratios that docs/coroutines.md quotes.
#
# Usage: bench/coro_compare.sh [BUILD_DIR [N]]
#   BUILD_DIR  where bench_coro was built (default: build)
#   N          resumes per rill measurement (default 100000000); Python gets
#              N/10, which is enough for its ~100x slower resumes
#   PYTHON     environment variable: the interpreter to measure (default python3)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
n=${2:-100000000}
python=${PYTHON:-python3}

if [ ! -x "$build/bench_coro" ]; then
    echo "coro_compare: $build/bench_coro not found; build it first" >&2
    exit 1
fi

echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "compiler: $(${CC:-gcc} --version | head -n1)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench_coro" "$n" | tee "$out"
if command -v "$python" >/dev/null 2>&1; then
    echo "python: $("$python" --version 2>&1) ($(command -v "$python"))"
    "$python" "$here/coro_baseline.py" $((n / 10)) | tee -a "$out"
else
    echo "python: $python not found, no Python baseline" >&2
fi

echo
awk '
    { v[$1 " " $2] = $3 }
    function ratio(label, a, b) {
        if ((a in v) && (b in v) && v[b] > 0)
            printf "%-44s %10.1fx\n", label, v[a] / v[b]
    }
    END {
        print "ratios (how many times rill is cheaper):"
        ratio("resume: python next() / rill next", "python next_ns", "rill next_ns")
        ratio("resume: python send() / rill send", "python send_ns", "rill send_ns")
        ratio("yield from level: python / rill", "python level_ns", "rill level_ns")
        ratio("switch: thread hand-off / rill next", "thread switch_ns", "rill next_ns")
        ratio("create: python generator / rill", "python create_ns", "rill create_ns")
        ratio("create: thread create+join / rill", "thread create_ns", "rill create_ns")
        ratio("memory: python generator / rill state", "python state_bytes", "rill state_bytes")
        ratio("memory: thread resident / rill state", "thread rss_bytes", "rill state_bytes")
        ratio("memory: thread stack (virtual) / rill state", "thread stack_bytes", "rill state_bytes")
    }' "$out"
