#!/usr/bin/env bash
# Pod network benchmarks (bench/netbench): podnet Setup and Teardown per pod
# (p50/p99), and TCP throughput pod to pod on the bridge and through a
# hostPort against a plain veth pair (MB/s, ratios). Runs both benchmarks
# RUNS times, interleaved, and prints the median of each figure over the
# runs with the load average beside each run. Needs root and bin/cni
# (make build). Everything runs in network namespaces the benchmarks make
# and remove; the machine's own network is not touched. See bench/README.md.
#
#   bench/network.sh [-runs 5] [-cycles 200] [-streams 10] [-mib 256]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5 cycles=200 streams=10 mib=256
while [ $# -gt 0 ]; do
	case "$1" in
	-runs) runs=$2 ;;
	-cycles) cycles=$2 ;;   # pods set up and torn down per run
	-streams) streams=$2 ;; # streams per path per run
	-mib) mib=$2 ;;         # MiB per stream
	*) echo "network.sh: unknown argument $1 (see the header)" >&2; exit 2 ;;
	esac
	shift 2
done

if [ "$(id -u)" != 0 ]; then
	echo "network.sh: run as root (network namespaces, CNI plugins, nftables)" >&2
	exit 1
fi
for p in bridge host-local; do
	if [ ! -x "bin/cni/$p" ]; then
		echo "network.sh: bin/cni/$p is missing: run make build first" >&2
		exit 1
	fi
done

mkdir -p out
go test -c -o out/netbench.test ./bench/netbench
log=out/bench-network.txt
# A missing prerequisite fails instead of skipping.
export PODBOOT_INTEGRATION=1

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
	echo "# $(date -u '+%F %T') UTC, commit $(git rev-parse --short HEAD), $(nproc) cores, kernel $(uname -r)"
	echo "# runs=$runs cycles=$cycles streams=$streams mib=$mib"
} | tee "$log"
for i in $(seq "$runs"); do
	echo "# run $i: load $(load)" | tee -a "$log"
	out/netbench.test -test.run '^$' -test.bench '^BenchmarkSetupTeardown$' \
		-test.benchtime "${cycles}x" | grep '^Benchmark' | tee -a "$log"
	out/netbench.test -test.run '^$' -test.bench '^BenchmarkThroughput$' \
		-test.benchtime "${streams}x" -netbench.mib "$mib" | grep '^Benchmark' | tee -a "$log"
done
echo "# end: load $(load)" | tee -a "$log"

# Median, min and max of every reported metric over the runs (the lower
# middle for an even count); ns/op is left out.
echo
echo "summary over $runs runs (median [min max]):"
grep '^Benchmark' "$log" |
	awk '{ for (i = 5; i < NF; i += 2) print $(i + 1), $i }' |
	sort -k1,1 -k2,2g |
	awk '{ v[$1] = v[$1] " " $2; n[$1]++ }
	END { for (u in v) { split(substr(v[u], 2), a, " ")
		printf "  %-18s %10s  [%s %s]\n", u, a[int((n[u] + 1) / 2)], a[1], a[n[u]] } }' |
	sort | tee -a "$log"
