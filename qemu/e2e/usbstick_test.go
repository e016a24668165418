package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podboot/podboot/internal/testenv"
)

// stickSize is the USB stick's size; its one partition starts at 1 MiB,
// as a stick from a shop's.
const (
	stickSize   = 64 << 20
	stickOffset = 1 << 20
)

// writeStick writes a USB stick image at path: an MBR with one FAT32
// partition labelled PODBOOT-OTA holding the bundle's OCI layout (a
// bundle tar untarred), made the way an operator would on a PC, without
// root. An existing image is overwritten in place (same inode), so a QEMU
// that has it open reads the new content.
func writeStick(t *testing.T, path, bundleTar string) {
	t.Helper()
	for tool, pkg := range map[string]string{"sfdisk": "fdisk", "mkfs.vfat": "dosfstools", "mcopy": "mtools", "tar": "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "needs %s: apt-get install -y %s", tool, pkg)
		}
	}
	work := t.TempDir()
	layout := filepath.Join(work, "layout")
	img := filepath.Join(work, "stick.img")
	run := func(stdin string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make the USB stick: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	if err := os.MkdirAll(layout, 0o755); err != nil {
		t.Fatal(err)
	}
	run("", "tar", "-xf", bundleTar, "-C", layout)
	entries, err := os.ReadDir(layout)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, stickSize); err != nil {
		t.Fatal(err)
	}
	run(fmt.Sprintf("start=%d, type=c\n", stickOffset/512), "sfdisk", "-q", img)
	run("", "mkfs.vfat", "--offset", fmt.Sprint(stickOffset/512), "-F", "32", "-n", "PODBOOT-OTA", img, fmt.Sprint((stickSize-stickOffset)/1024))
	args := []string{"-s", "-i", fmt.Sprintf("%s@@%d", img, stickOffset)}
	for _, e := range entries {
		args = append(args, filepath.Join(layout, e.Name()))
	}
	run("", "mcopy", append(args, "::/")...)
	run("", "cp", "--sparse=always", img, path)
}

// TestOTAFromUSBStick boots the board with a USB stick (usb-storage on
// qemu-xhci) holding generation 1's bundle as an OCI layout on FAT32
// labelled PODBOOT-OTA, and device.yaml's ota.source pointing at where
// PID 1 mounts it: PID 1 mounts it read-only, the agent takes the bundle
// through the same verification as any other and commits it, and its pod
// runs. The stick is then pulled out (its SCSI disk deleted, as the
// kernel does when it goes): PID 1 unmounts it and the board keeps its
// generation. Generation 2 is written onto the stick and it is put back
// (the SCSI host scanned again): it is mounted again and generation 2 is
// committed. One boot.
func TestOTAFromUSBStick(t *testing.T) {
	// Alone: the package's other tests boot one at a time, and so does
	// this one once they are done.
	t.Parallel()
	s := setup(t)
	dir := copyImage(t, s.qemuImage)
	fl, err := FindFlash(filepath.Join(dir, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	key := filepath.Join(work, "fleet.key")
	if out, err := exec.Command(s.podctl, "ota", "keygen", key).CombinedOutput(); err != nil {
		t.Fatalf("podctl ota keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	const deadline, stable = 60 * time.Second, 10 * time.Second
	device, err := fl.ReadFile("/device.yaml")
	if err != nil {
		device = nil // the image has none: the defaults
	}
	device = append(device, fmt.Sprintf("\nota:\n  keys: [%q]\n  source: oci-layout:/media/ota\n  pollInterval: 2s\n  healthDeadline: %s\n  stableFor: %s\n",
		strings.TrimSpace(string(pub)), deadline, stable)...)
	if err := fl.WriteFile("/device.yaml", device); err != nil {
		t.Fatal(err)
	}
	hand := []string{"e2e-pair", "e2e-sleeper"}
	g1 := otaGen{number: 1, pods: []string{"usb-web"}}
	g2 := otaGen{number: 2, pods: []string{"usb-web", "usb-api"}}
	stick := filepath.Join(work, "stick.img")
	writeStick(t, stick, g1.bundle(t, s.podctl, key, work))
	tar2 := g2.bundle(t, s.podctl, key, work)

	start := time.Now()
	b := Boot(t, dir, Options{DebugShell: true, USBDisks: []string{stick}})
	mustWaitAPI(t, b)
	mounted := regexp.MustCompile(`msg="OTA stick mounted" device=(/dev/sd[a-z]+1) fstype=vfat label=PODBOOT-OTA`)
	line, err := b.WaitConsole(mounted, BootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	dev := mounted.FindStringSubmatch(line)[1]
	commitWithin := PodsTimeout + deadline
	waitOTA(t, b, s.podctl, commitWithin, "generation 1 from the stick committed", func(st otaStatus) bool { return st.Generation == 1 && st.State == "committed" })
	waitGeneration(t, b, hand, g1, PodsTimeout)
	t.Logf("generation 1 from the stick committed and running %s after the boot started", time.Since(start).Round(time.Second))

	// The mount as the kernel has it: read-only, and nothing on the stick
	// is a device, runs, or raises privileges.
	m := b.MustShellMatch(t, "grep ' /media/ota ' /proc/mounts", regexp.MustCompile(`(/dev/\S+) /media/ota vfat (\S+)`))
	if m[1] != dev {
		t.Errorf("/media/ota is %s, the console said %s", m[1], dev)
	}
	opts := strings.Split(m[2], ",")
	for _, want := range []string{"ro", "nosuid", "nodev", "noexec"} {
		if !slices.Contains(opts, want) {
			t.Errorf("/media/ota is mounted %s: no %s", m[2], want)
		}
	}

	// Pulled out.
	disk := strings.TrimSuffix(strings.TrimPrefix(dev, "/dev/"), "1")
	b.MustShell(t, "echo 1 > /sys/block/"+disk+"/device/delete")
	if _, err := b.WaitConsole(regexp.MustCompile(`msg="OTA stick unmounted" device=`+regexp.QuoteMeta(dev)+` dir=/media/ota why="the device is gone"`), time.Minute); err != nil {
		t.Fatal(err)
	}
	b.MustShellMatch(t, "grep -c ' /media/ota ' /proc/mounts || true", regexp.MustCompile(`(?m)^0\s*$`))
	if st, err := otaStatusOf(b, s.podctl); err != nil || st.Generation != 1 || st.State != "committed" {
		t.Errorf("with the stick gone: %+v, %v; want generation 1 committed", st, err)
	}

	// Generation 2 on the stick, put back.
	writeStick(t, stick, tar2)
	b.MustShell(t, `for h in /sys/class/scsi_host/host*/scan; do echo "- - -" > $h; done`)
	for deadline := time.Now().Add(time.Minute); len(mounted.FindAllString(b.ConsoleText(), -1)) < 2; time.Sleep(time.Second) {
		if time.Now().After(deadline) || b.Exited() {
			t.Fatalf("the stick put back was not mounted again within a minute (exited: %t)", b.Exited())
		}
	}
	waitOTA(t, b, s.podctl, commitWithin, "generation 2 from the stick committed", func(st otaStatus) bool { return st.Generation == 2 && st.State == "committed" })
	waitGeneration(t, b, hand, g2, PodsTimeout)

	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
	var said []string
	for _, l := range strings.Split(b.ConsoleText(), "\n") {
		if strings.Contains(l, "OTA stick") || strings.Contains(l, "FAT-fs") {
			said = append(said, strings.TrimSpace(l))
		}
	}
	t.Logf("what the console said of the stick:\n%s", strings.Join(said, "\n"))
	t.Logf("one boot, two generations from the stick: %s from the boot to the poweroff", time.Since(start).Round(time.Second))
}
