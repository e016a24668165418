#!/usr/bin/env bash
# The board's API as the stock kubectl uses it, on a devnode: kubectl apply
# to Running beside a manifest file to Running, get/list latency with 100
# pods, and the exec round trip beside podman exec. Needs root, kubectl and
# `make build`; podman for the exec comparison. See bench/README.md
# ("kubectl writes"). Extra arguments go to kubectlbench (e.g. -runs 5).
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
if ! command -v kubectl >/dev/null; then
	echo "bench: kubectl is missing (v1.32 from pkgs.k8s.io)" >&2
	exit 1
fi

podman_flag=()
if command -v podman >/dev/null; then
	# podman 4.3's default rlimits exceed these machines' hard limits
	# (bench/run.sh sets the same default_ulimits, idempotently).
	conf=/etc/containers/containers.conf
	line='default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]'
	mkdir -p /etc/containers
	[ -f "$conf" ] || : >"$conf"
	if ! grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf"; then
		if grep -Eq '^[[:space:]]*\[containers\][[:space:]]*$' "$conf"; then
			sed -i -E "0,/^[[:space:]]*\[containers\][[:space:]]*$/s//[containers]\n$line/" "$conf"
		else
			printf '\n[containers]\n%s\n' "$line" >>"$conf"
		fi
	fi
else
	echo "bench: podman not found (apt-get install podman): kubectl exec measured alone" >&2
	podman_flag=(-podman=false)
fi

mkdir -p out
go build -o out/kubectlbench ./bench/cmd/kubectlbench
exec out/kubectlbench -bin bin -report out/bench-writes.md "${podman_flag[@]}" "$@"
