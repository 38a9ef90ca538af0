#!/bin/sh
# Whole-process wall time of `ip_stats LOG IP IP IP` (single-threaded, or
# with the options given after the rounds, e.g. --threaded) against the
# one-thread hand loop run as a process of its own, with its IPs from argv
# (bench_ip_stats_scale --once hand), interleaved, ROUNDS of each: best and
# median of each, and their ratios, with the load average before and after.
# The issue's target (issue 10): single-threaded median <= 1.10 x hand.
#
#   bench/ip_stats_whole.sh BUILD_DIR [LOG] [ROUNDS] [IP_STATS_OPTION...]
#
# LOG defaults to the 1 GB log bench_ip_stats makes (/tmp/rill-bench.log;
# run that benchmark once first).
set -eu
build=${1:?usage: ip_stats_whole.sh BUILD_DIR [LOG] [ROUNDS] [IP_STATS_OPTION...]}
log=${2:-/tmp/rill-bench.log}
rounds=${3:-11}
shift $(($# < 3 ? $# : 3))
. "$(dirname "$0")/bench_util.sh"
[ -f "$log" ] || { echo "no log $log: run $build/bench_ip_stats first" >&2; exit 1; }


want=$("$build/bench_ip_stats_scale" --once hand --log "$log" $ips)
got=$("$build/ip_stats" --quiet "$@" "$log" $ips)
[ "$got" = "$want" ] || { echo "ip_stats $* disagrees with the hand loop" >&2; exit 1; }
echo "log $log ($(du -h "$log" | cut -f1)); ip_stats $*; $rounds rounds; loadavg before: $(cat /proc/loadavg)"
h=""; r=""
i=0
while [ "$i" -lt "$rounds" ]; do
    h="$h $(ms "$build/bench_ip_stats_scale" --once hand --log "$log" $ips)"
    r="$r $(ms "$build/ip_stats" --quiet "$@" "$log" $ips)"
    i=$((i + 1))
done
hb=$(echo "$h" | best); hm=$(echo "$h" | median)
rb=$(echo "$r" | best); rm=$(echo "$r" | median)
echo "hand ms:$h"
echo "rill ms:$r"
awk -v hb="$hb" -v hm="$hm" -v rb="$rb" -v rm="$rm" 'BEGIN {
    printf "hand best %d median %s ms; rill best %d median %s ms; ratio best %.3f median %.3f\n",
           hb, hm, rb, rm, rb / hb, rm / hm }'
echo "loadavg after: $(cat /proc/loadavg)"
