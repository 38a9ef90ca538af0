# Shell helpers of the whole-process benchmarks (bench/ip_stats_*.sh), read
# with `. "$(dirname "$0")/bench_util.sh"`: the seed's three IPs, a wall
# clock per command, and the median and best of a list of numbers.
ips="83.149.9.216 93.114.45.13 207.241.237.101"

ms() { # run "$@" quietly, print its wall time in ms
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}

# Numbers separated by spaces or newlines on stdin.
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
best() { tr ' ' '\n' | grep . | sort -n | head -1; }
