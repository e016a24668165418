#!/bin/bash
# PID 1 smoke test: boots init/cmd/init under QEMU (aarch64 virt, TCG) in a
# hand-made initramfs with Debian's arm64 kernel, stand-ins for containerd
# and podagent (init/smoke/standin), busybox as /bin/sh and a PODBOOT ext4
# flash marked "errors detected"; checks the mount table, cgroup2
# controllers, modules, fsck, flash, hostname, clock, DHCP, a service
# restart, and a clean poweroff by the power button (system_powerdown).
#
#   init/smoke/run.sh [WORKDIR]      (needs qemu-system-aarch64, e2fsprogs)
#
# Debian packages (arm64) are fetched with apt-get download into WORKDIR.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-/tmp/podboot-init-smoke}
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$work"

step() { echo "== $*"; }
fail() { echo "FAIL: $*"; exit 1; }

fetch() { # package -> extracted under $work/pkgs/<package>
	local pkg=$1
	if [ ! -d "pkgs/$pkg" ]; then
		ls "$pkg"_*.deb >/dev/null 2>&1 || apt-get download "$pkg:arm64" >/dev/null
		mkdir -p "pkgs/$pkg"
		dpkg-deb -x "$(ls "$pkg"_*.deb | head -1)" "pkgs/$pkg"
	fi
}
kpkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-/{print $2; exit}' | sed 's/:arm64$//')
step "fetch $kpkg busybox-static e2fsck-static"
fetch "$kpkg"; fetch busybox-static; fetch e2fsck-static
kroot=pkgs/$kpkg
kver=$(ls "$kroot/lib/modules")

step "build init and stand-ins (arm64)"
(cd "$repo" && CGO_ENABLED=0 GOARCH=arm64 go build -trimpath -ldflags=-s -o "$work/init" ./init/cmd/init \
	&& CGO_ENABLED=0 GOARCH=arm64 go build -trimpath -ldflags=-s -o "$work/standin" ./init/smoke/standin \
	&& go build -o "$work/mkcpio" ./init/smoke/mkcpio)

step "initramfs"
rm -rf stage && mkdir -p stage/bin stage/sbin stage/etc "stage/lib/modules/$kver"
cp init stage/init
cp pkgs/busybox-static/bin/busybox stage/bin/busybox
ln -s busybox stage/bin/sh
cp standin stage/bin/containerd && cp standin stage/bin/podagent
cp pkgs/e2fsck-static/sbin/e2fsck.static stage/sbin/e2fsck
: > stage/lib/modules/load.order
# Dependencies first; crc32c_generic is nobody's declared dependency.
for m in crypto/crc32c_generic lib/crc16 fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4 \
	drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci \
	drivers/block/virtio_blk net/core/failover drivers/net/net_failover drivers/net/virtio_net \
	drivers/input/evdev drivers/input/keyboard/gpio_keys; do
	src=$kroot/lib/modules/$kver/kernel/$m.ko
	mkdir -p "stage/lib/modules/$kver/kernel/$(dirname "$m")"
	cp "$src" "stage/lib/modules/$kver/kernel/$m.ko"
	echo "/lib/modules/$kver/kernel/$m.ko" >> stage/lib/modules/load.order
done
echo "/lib/modules/$kver/kernel/no/such_module.ko" >> stage/lib/modules/load.order
./mkcpio stage initramfs.cpio.gz
ls -la initramfs.cpio.gz


# newflash: an ext4 PODBOOT flash marked "errors detected" so e2fsck runs.
newflash() {
	rm -rf flash && mkdir -p flash/.podboot
	printf 'hostname: smoke-board\n' > flash/device.yaml
	echo "hello from the flash" > flash/hello.txt
	echo "2030-01-01T00:00:00Z" > flash/.podboot/clock
	rm -f disk.img && mkfs.ext4 -q -L PODBOOT -d flash disk.img 64M
	tune2fs -E force_fsck disk.img >/dev/null
}

# boot CMDLINE-EXTRA READY-PATTERN: boots, waits for the pattern, presses
# the power button when PRESS=1, and waits for QEMU to exit.
boot() {
	rm -f console.log mon.sock
	qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
		-kernel "$kroot/boot/vmlinuz-$kver" -initrd initramfs.cpio.gz \
		-append "console=ttyAMA0 cgroup_no_v1=all $1" \
		-drive if=virtio,format=raw,file=disk.img \
		-netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
		-monitor unix:mon.sock,server,nowait -serial file:console.log -display none &
	qpid=$!
	trap 'kill $qpid 2>/dev/null || true' EXIT
	for i in $(seq 1 180); do
		grep -Eq "$2" console.log 2>/dev/null && break
		kill -0 $qpid 2>/dev/null || break
		sleep 1
	done
	grep -Eq "$2" console.log || { kill $qpid; fail "no /$2/ in 180 s; see $work/console.log"; }
	if [ "${PRESS:-1}" = 1 ]; then
		step "power button (system_powerdown)"
		python3 - "$work/mon.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.2)
s.sendall(b"system_powerdown\n"); time.sleep(0.5); s.close()
PY
	fi
	for i in $(seq 1 60); do kill -0 $qpid 2>/dev/null || break; sleep 1; done
	kill -0 $qpid 2>/dev/null && { kill $qpid; fail "guest did not go down in 60 s"; }
	wait $qpid || true
	trap - EXIT
}

ok=0
check() { # description, grep pattern (extended)
	if grep -Eq -- "$2" console.log; then echo "ok   $1"; else echo "FAIL $1 (no /$2/)"; ok=1; fi
}
flash_clean() {
	if e2fsck -fn disk.img >fsck.out 2>&1; then echo "ok   flash clean after $1"; else echo "FAIL flash not clean after $1:"; cat fsck.out; ok=1; fi
}

step "boot 1: services, power button"
newflash
boot "" "SMOKE ready"
cp console.log console-1.log
check "first line of PID 1" 'podboot init starting'
check "cgroup2 mounted, no v1" 'SMOKE mounts: cgroup2 /sys/fs/cgroup cgroup2'
check "controllers enabled" 'SMOKE subtree_control: .*cpu.*memory.*pids'
check "devtmpfs" 'SMOKE mounts: devtmpfs /dev devtmpfs'
check "/var tmpfs" 'SMOKE mounts: tmpfs /var tmpfs'
check "modules loaded, bad one logged" 'module failed.*such_module'
check "e2fsck ran" 'msg=e2fsck .*code=[012] '
check "flash mounted" 'SMOKE flash: hello from the flash'
check "hostname from device.yaml" 'SMOKE hostname: smoke-board'
check "clock never backwards" 'SMOKE clock: 20(3[0-9])'
check "DHCP lease" 'network: DHCP lease.*address=10.0.2.15/24'
check "resolv.conf" 'SMOKE resolv: nameserver 10.0.2.3'
check "podagent restarted after a crash" 'msg="service started" service=podagent pid=[0-9]+ attempt=2'
check "podagent flags" 'SMOKE podagent args --flash /flash --state /run/podboot --containerd /run/containerd/containerd.sock --runc /bin/runc'
check "pivot_root works for runc" 'SMOKE pivot_root: ok'
check "power button" 'power button pressed'
check "podagent stopped" 'SMOKE podagent got SIGTERM'
check "flash unmounted" 'step="unmount flash" result=unmounted'
check "poweroff" 'msg="system going down" action=poweroff'
if grep -n "SMOKE podagent got SIGTERM\|SMOKE containerd got SIGTERM" console.log | awk -F: 'NR==1 && !/podagent/{exit 1}'; then echo "ok   stop order"; else echo "FAIL stop order"; ok=1; fi
flash_clean poweroff
saved=$(debugfs -R "cat /.podboot/clock" disk.img 2>/dev/null)
case $saved in 203*) echo "ok   clock saved at shutdown ($saved)";; *) echo "FAIL clock not saved ($saved)"; ok=1;; esac

step "boot 2: podagent missing: fatal, countdown, reboot"
mv stage/bin/podagent podagent.off
./mkcpio stage initramfs.cpio.gz
PRESS=0 boot "" 'going down" action=reboot'
cp console.log console-2.log
check "fatal logged" 'FATAL: rebooting after the countdown'
check "countdown" 'rebooting in 1 s'
check "reboot" 'msg="system going down" action=reboot'
flash_clean reboot

step "boot 3: podagent missing with podboot.debug=shell: no reboot, a shell"
boot "podboot.debug=shell" 'msg="service started" service=shell'
cp console.log console-3.log
check "no reboot in debug mode" 'podboot.debug=shell: not rebooting'
check "shell on the console" 'msg="service started" service=shell'
check "poweroff still works" 'msg="system going down" action=poweroff'
mv podagent.off stage/bin/podagent

[ $ok = 0 ] && echo "PASS (consoles: $work/console-{1,2,3}.log)" || { echo "consoles: $work/console-{1,2,3}.log"; exit 1; }
