#!/usr/bin/env bash
# bench/boot.sh [OUTDIR] [-n RUNS] [--readme]
#
# Boot times of a qemu-arm64 image under QEMU TCG (-M virt -cpu cortex-a72
# -smp 2 -m 1024), measured from the host: RUNS boots (default 5) of a fresh
# copy of OUTDIR (default out/qemu-arm64, from make image), each timed from
# QEMU's start to
#   - the kernel handing over to /init ("Run /init as init process"),
#   - PID 1's first line (the first console line after that which is not a
#     kernel message),
#   - the API answering (GET /healthz through the forwarded port),
#   - the first pod Running (phase Running, through the API with the token),
# then the power button is pressed and the time to QEMU's exit taken too.
# Console lines are timed by polling the console file every 20 ms, so each
# figure is late by up to one poll (plus curl's ~10 ms). Prints medians and
# the image sizes (initramfs, and Image and disk.img gzip -9); --readme also
# appends the results to bench/README.md.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmdline="bench/boot.sh $*"
out=$repo/out/qemu-arm64
runs=5
readme=0
while [[ $# -gt 0 ]]; do
	case $1 in
	-n) runs=$2; shift 2 ;;
	--readme) readme=1; shift ;;
	-h|--help) sed -n '2,18p' "$0"; exit 0 ;;
	-*) echo "bench/boot.sh: unknown flag $1" >&2; exit 2 ;;
	*) out=$1; shift ;;
	esac
done
for f in Image initramfs.cpio.gz cmdline.txt disk.img kubeconfig; do
	[[ -e $out/$f ]] || { echo "bench/boot.sh: $out/$f is missing: make image BOARD=qemu-arm64 first" >&2; exit 1; }
done
for tool in curl gzip qemu-system-aarch64; do
	command -v $tool >/dev/null || { echo "bench/boot.sh: $tool is missing" >&2; exit 1; }
done

# Build qemuboot once, so go build is not in the timings.
"$repo/qemu/boot" --help >/dev/null 2>&1 || true
qemuboot=$repo/bin/qemuboot
token=$(awk '$1 == "token:" { print $2; exit }' "$out/kubeconfig")
[[ -n $token ]] || { echo "bench/boot.sh: no token in $out/kubeconfig" >&2; exit 1; }

work=$(mktemp -d /tmp/pbboot.XXXXXX)
pid=""
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 90); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

declare -a t_kernel t_init t_api t_pod t_off
for ((i = 1; i <= runs; i++)); do
	img=$work/img
	rm -rf "$img"; mkdir -p "$img"
	cp --sparse=always "$out"/{Image,initramfs.cpio.gz,cmdline.txt,disk.img,kubeconfig} "$img/"
	port=$(free_port)
	console=$work/console-$i.log
	start=$(now)
	"$qemuboot" "$img" --api-port "$port" --console "$console" 2>"$work/qemuboot-$i.log" &
	pid=$!
	kernel="" init="" api="" pod=""
	deadline=$((SECONDS + 600))
	while [[ -z $pod ]]; do
		kill -0 "$pid" 2>/dev/null || { echo "run $i: QEMU exited early; console:" >&2; tail -n 30 "$console" >&2; exit 1; }
		(( SECONDS < deadline )) || { echo "run $i: no pod Running within 10 minutes" >&2; tail -n 30 "$console" >&2; exit 1; }
		if [[ -z $init && -s $console ]]; then
			if [[ -z $kernel ]] && grep -q 'Run /init as init process' "$console"; then kernel=$(now); fi
			if [[ -n $kernel ]] && tr -d '\r' <"$console" | awk '/Run \/init as init process/ { seen = 1; next } seen && $0 != "" && $0 !~ /^ *\[/ { found = 1; exit } END { exit !found }'; then
				init=$(now)
			fi
		fi
		if [[ -z $api ]] && [[ $(curl -sk --max-time 2 "https://127.0.0.1:$port/healthz" 2>/dev/null) == ok ]]; then api=$(now); fi
		if [[ -n $api ]] && curl -sk --max-time 2 -H "Authorization: Bearer $token" \
			"https://127.0.0.1:$port/api/v1/namespaces/default/pods" 2>/dev/null | grep -q '"phase": *"Running"'; then
			pod=$(now)
		fi
		sleep 0.02
	done
	press=$(now)
	kill -TERM "$pid"
	wait "$pid" || { echo "run $i: qemu/boot did not end with a guest poweroff:" >&2; tail -n 5 "$work/qemuboot-$i.log" >&2; }
	off=$(now)
	pid=""
	t_kernel+=("$(since "$start" "$kernel")")
	t_init+=("$(since "$start" "$init")")
	t_api+=("$(since "$start" "$api")")
	t_pod+=("$(since "$start" "$pod")")
	t_off+=("$(since "$press" "$off")")
	echo "run $i: kernel→/init ${t_kernel[-1]} s, PID 1 first line ${t_init[-1]} s, API ${t_api[-1]} s, first pod Running ${t_pod[-1]} s; power button → off ${t_off[-1]} s" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
size_initramfs=$(stat -c %s "$out/initramfs.cpio.gz")
size_image_gz=$(gzip -9 -c "$out/Image" | wc -c)
size_disk=$(stat -c %s "$out/disk.img")
size_disk_gz=$(gzip -9 -c "$out/disk.img" | wc -c)
total=$((size_initramfs + size_image_gz + size_disk_gz))
m_init=$(median "${t_init[@]}")
m_pod=$(median "${t_pod[@]}")

report=$work/report.md
{
	echo "### $(date -u +%Y-%m-%d) — \`$cmdline\`"
	echo
	echo "$runs boots of \`${out#$repo/}\`, seconds from QEMU's start (median; runs in order):"
	echo
	echo "| to | median | runs |"
	echo "| --- | ---: | --- |"
	echo "| kernel hands over to /init | $(median "${t_kernel[@]}") | ${t_kernel[*]} |"
	echo "| PID 1's first line | $m_init | ${t_init[*]} |"
	echo "| API answering (/healthz) | $(median "${t_api[@]}") | ${t_api[*]} |"
	echo "| first pod Running | $m_pod | ${t_pod[*]} |"
	echo "| power button → QEMU exit | $(median "${t_off[@]}") | ${t_off[*]} |"
	echo
	echo "First pod Running $(awk -v a="$m_init" -v b="$m_pod" 'BEGIN { printf "%.2f", b - a }') s after PID 1's first line (medians)."
	echo
	echo "| image file | size | gzip -9 |"
	echo "| --- | ---: | ---: |"
	echo "| initramfs.cpio.gz | $(mb "$size_initramfs") MB | (already gzip) |"
	echo "| Image (kernel) | $(mb "$(stat -c %s "$out/Image")") MB | $(mb "$size_image_gz") MB |"
	echo "| disk.img (flash) | $(mb "$size_disk") MB (sparse) | $(mb "$size_disk_gz") MB |"
	echo "| total to ship | | $(mb "$total") MB |"
	echo
	echo "Host: $(nproc) cores, $(qemu-system-aarch64 --version | head -1), TCG."
} >"$report"
cat "$report"
if [[ $readme == 1 ]]; then
	readme_file=$repo/bench/README.md
	grep -q '^## Boot (QEMU TCG)' "$readme_file" || printf '\n## Boot (QEMU TCG)\n\nMeasured by `bench/boot.sh` (see the script header for what each figure is and how it is taken).\n' >>"$readme_file"
	{ echo; cat "$report"; } >>"$readme_file"
	echo "appended to bench/README.md" >&2
fi
