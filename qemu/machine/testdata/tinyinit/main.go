// Command tinyinit is a stand-in PID 1 for testing the QEMU machine without
// a podboot image: it prints a line, loads the power button's modules, and
// powers off on KEY_POWER (QEMU's system_powerdown), or at once when the
// kernel command line says tinyinit.poweroff.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	fmt.Println("tinyinit: up")
	if err := run(); err != nil {
		fmt.Println("tinyinit:", err)
	}
	// PID 1 must not exit; wait for the operator to kill QEMU.
	select {}
}

func run() error {
	_ = os.MkdirAll("/dev", 0o755)
	_ = os.MkdirAll("/proc", 0o755)
	if err := unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, ""); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if strings.Contains(string(cmdline), "tinyinit.poweroff") {
		return powerOff("asked on the command line")
	}
	if strings.Contains(string(cmdline), "tinyinit.deaf") {
		return fmt.Errorf("deaf: not listening for the power button")
	}
	for _, m := range []string{"/evdev.ko", "/gpio_keys.ko"} {
		f, err := os.Open(m)
		if err != nil {
			return err
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
			return fmt.Errorf("load %s: %w", m, err)
		}
		f.Close()
	}
	// gpio-keys probes asynchronously.
	var devs []string
	for i := 0; i < 100 && len(devs) == 0; i++ {
		devs, _ = filepath.Glob("/dev/input/event*")
		time.Sleep(50 * time.Millisecond)
	}
	if len(devs) == 0 {
		return fmt.Errorf("no input device")
	}
	fmt.Println("tinyinit: waiting for the power button on", strings.Join(devs, " "))
	pressed := make(chan string)
	for _, d := range devs {
		go watch(d, pressed)
	}
	return powerOff(<-pressed)
}

// watch reads input_event records (24 bytes on arm64) and reports KEY_POWER.
func watch(dev string, pressed chan<- string) {
	f, err := os.Open(dev)
	if err != nil {
		fmt.Println("tinyinit:", err)
		return
	}
	buf := make([]byte, 24)
	for {
		if _, err := f.Read(buf); err != nil {
			fmt.Println("tinyinit:", err)
			return
		}
		typ := binary.LittleEndian.Uint16(buf[16:])
		code := binary.LittleEndian.Uint16(buf[18:])
		value := int32(binary.LittleEndian.Uint32(buf[20:]))
		if typ == unix.EV_KEY && code == keyPower && value == 1 {
			pressed <- "power button on " + dev
			return
		}
	}
}

func powerOff(why string) error {
	fmt.Println("tinyinit: powering off:", why)
	unix.Sync()
	time.Sleep(100 * time.Millisecond) // let the console drain
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// keyPower is KEY_POWER from linux/input-event-codes.h.
const keyPower = 116
