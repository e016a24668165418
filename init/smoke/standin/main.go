// Command standin plays containerd and podagent in PID 1's smoke test
// (init/smoke/run.sh), chosen by the name it runs as: "containerd" listens
// on the board's containerd socket; "podagent" prints what the test checks
// (mounts, cgroup controllers, hostname, flash, network), crashes on its
// first run to show the restart, and stops on SIGTERM like the agent.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	switch filepath.Base(os.Args[0]) {
	case "containerd":
		os.Remove("/run/containerd/containerd.sock")
		l, err := net.Listen("unix", "/run/containerd/containerd.sock")
		if err != nil {
			fmt.Println("SMOKE containerd listen:", err)
			os.Exit(1)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		fmt.Println("SMOKE containerd serving")
	case "podagent":
		const runs = "/run/smoke-agent-runs"
		b, _ := os.ReadFile(runs)
		os.WriteFile(runs, append(b, 'x'), 0o644)
		if len(b) == 0 {
			fmt.Println("SMOKE podagent first run: crashing on purpose")
			os.Exit(3)
		}
		fmt.Println("SMOKE podagent args", strings.Join(os.Args[1:], " "))
		show := func(name, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				fmt.Printf("SMOKE %s: %v\n", name, err)
				return
			}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				fmt.Printf("SMOKE %s: %s\n", name, l)
			}
		}
		show("mounts", "/proc/mounts")
		show("subtree_control", "/sys/fs/cgroup/cgroup.subtree_control")
		show("hostname", "/proc/sys/kernel/hostname")
		show("flash", "/flash/hello.txt")
		show("modules", "/proc/modules")
		for i := 0; i < 100; i++ {
			if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
				show("resolv", "/etc/resolv.conf")
				_ = b
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			addrs, _ := i.Addrs()
			fmt.Printf("SMOKE iface: %s %v\n", i.Name, addrs)
		}
		fmt.Printf("SMOKE clock: %s\n", time.Now().UTC().Format(time.RFC3339))
		fmt.Printf("SMOKE pivot_root: %s\n", tryPivotRoot())
		fmt.Println("SMOKE ready")
	}
	<-sigs
	fmt.Println("SMOKE", filepath.Base(os.Args[0]), "got SIGTERM, stopping")
}

// tryPivotRoot does what runc does to enter a container's root: a new
// mount namespace, a private tree, pivot_root into a mount. The kernel
// refuses pivot_root while the caller's root is the initramfs (rootfs).
func tryPivotRoot() string {
	runtime.LockOSThread() // the namespace stays with this thread
	if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
		return "unshare: " + err.Error()
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return "make-rprivate: " + err.Error()
	}
	nr := "/tmp/pivot-new"
	os.MkdirAll(nr, 0o755)
	if err := syscall.Mount("tmpfs", nr, "tmpfs", 0, ""); err != nil {
		return "mount: " + err.Error()
	}
	os.MkdirAll(nr+"/old", 0o755)
	if err := syscall.PivotRoot(nr, nr+"/old"); err != nil {
		return "pivot_root: " + err.Error()
	}
	return "ok"
}
