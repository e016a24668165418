#!/usr/bin/env bash
# make bench: pod start latency (podboot vs podman kube play), memory and
# idle CPU of the stack. Needs root and `make build`; see bench/README.md.
# Extra arguments go to podbench (e.g. ./bench/run.sh -seq 10 -cpu-window 10s).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (containerd, runc and podman need it)" >&2
	exit 1
fi
for b in devnode mkimage runc; do
	if [ ! -x "bin/$b" ]; then
		echo "bench: bin/$b is missing: run make build first" >&2
		exit 1
	fi
done

# podman 4.3's default rlimits exceed these machines' hard limits: give
# its containers limits they can have. Idempotent: an existing
# default_ulimits is left as it is.
ensure_podman_ulimits() {
	local conf=/etc/containers/containers.conf
	local line='default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]'
	mkdir -p /etc/containers
	[ -f "$conf" ] || : >"$conf"
	if grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf"; then
		return 0
	fi
	if grep -Eq '^[[:space:]]*\[containers\][[:space:]]*$' "$conf"; then
		sed -i -E "0,/^[[:space:]]*\[containers\][[:space:]]*$/s//[containers]\n$line/" "$conf"
	else
		printf '\n[containers]\n%s\n' "$line" >>"$conf"
	fi
}

podman_flag=()
if command -v podman >/dev/null; then
	ensure_podman_ulimits
else
	echo "bench: podman not found (apt-get install podman): measuring podboot alone" >&2
	podman_flag=(-podman=false)
fi

mkdir -p out
go build -o out/podbench ./bench/cmd/podbench
exec out/podbench -bin bin -report out/bench-results.md -json out/bench-results.json "${podman_flag[@]}" "$@"
