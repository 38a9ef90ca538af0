#!/bin/sh
# Whole-process wall time of `ip_stats --parallel N` against the one-thread
# hand loop run as a process of its own (bench_ip_stats_scale --once hand),
# interleaved, medians of ROUNDS, for N = 1 .. 2 x nproc, with the load
# average before and after. The issue's target: N = nproc at <= 0.6 x hand.
#
#   bench/ip_stats_parallel.sh BUILD_DIR [LOG] [ROUNDS]
#
# LOG defaults to the 1 GB log bench_ip_stats_scale makes
# (/tmp/rill-bench-scale.log; run that benchmark once first).
set -eu
build=${1:?usage: ip_stats_parallel.sh BUILD_DIR [LOG] [ROUNDS]}
log=${2:-/tmp/rill-bench-scale.log}
rounds=${3:-7}
. "$(dirname "$0")/bench_util.sh"
cores=$(nproc)
[ -f "$log" ] || { echo "no log $log: run $build/bench_ip_stats_scale first" >&2; exit 1; }


want=$("$build/bench_ip_stats_scale" --once hand --log "$log" $ips)
echo "log $log ($(du -h "$log" | cut -f1)); $cores cores; loadavg before: $(cat /proc/loadavg)"
printf '%4s %10s %12s %8s\n' N "hand ms" "rill N ms" ratio
n=1
while [ "$n" -le $((2 * cores)) ]; do
    got=$("$build/ip_stats" --quiet --parallel "$n" "$log" $ips)
    [ "$got" = "$want" ] || { echo "ip_stats --parallel $n disagrees with the hand loop" >&2; exit 1; }
    h=""; r=""
    i=0
    while [ "$i" -lt "$rounds" ]; do
        h="$h $(ms "$build/bench_ip_stats_scale" --once hand --log "$log" $ips)"
        r="$r $(ms "$build/ip_stats" --quiet --parallel "$n" "$log" $ips)"
        i=$((i + 1))
    done
    hm=$(echo $h | tr ' ' '\n' | median)
    rm=$(echo $r | tr ' ' '\n' | median)
    printf '%4s %10s %12s %8.2f\n' "$n" "$hm" "$rm" "$(echo "$rm $hm" | awk '{ print $1 / $2 }')"
    n=$((n + 1))
done
echo "medians of $rounds interleaved rounds; loadavg after: $(cat /proc/loadavg)"
