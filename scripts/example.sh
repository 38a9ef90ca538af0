#!/usr/bin/env bash
# Install what is missing, build rill (Release) and run the main example,
# examples/ip_stats, on the shipped access log: first the seed's three client
# IPs, then the ten most frequent clients.
# Environment: RILL_JOBS (build jobs, default 2), RILL_BUILD_ROOT (where the
# build-ci-example dir goes, default the repo).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"
# shellcheck source=scripts/deps.sh
. scripts/deps.sh
rill_deps build

build=${RILL_BUILD_ROOT:-$root}/build-ci-example
jobs=${RILL_JOBS:-2}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRILL_TESTS=OFF -DRILL_BENCH=OFF
cmake --build "$build" -j"$jobs" --target ip_stats

echo
echo "+ ip_stats        # the seed's three IPs in data/apache_logs"
"$build/ip_stats"
echo
echo "+ ip_stats data/apache_logs        # the ten most frequent clients"
"$build/ip_stats" "$root/data/apache_logs"
