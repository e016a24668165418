// Package uki builds a unified kernel image: systemd's EFI stub
// (linuxaa64.efi.stub from Debian's systemd-boot-efi) with the kernel,
// initramfs, command line and os-release added as PE sections by the
// cross objcopy. UEFI firmware starts it as \EFI\BOOT\BOOTAA64.EFI; the stub
// hands the kernel its initramfs through the LINUX_EFI_INITRD_MEDIA device
// path and its command line, with no boot manager and no NVRAM entry.
package uki

import (
	"context"
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Section is one PE section to add.
type Section struct {
	Name string // ".linux", ".initrd", ".cmdline", ".osrel"
	File string
}

// Sections is the order systemd-stub documents (.linux last: the largest).
func Sections(kernel, initrd, cmdline, osrel string) []Section {
	return []Section{{".osrel", osrel}, {".cmdline", cmdline}, {".initrd", initrd}, {".linux", kernel}}
}

// Plan returns objcopy's arguments: each section placed at the next
// section-aligned virtual address after the stub's own sections.
func Plan(stub string, sections []Section) ([]string, error) {
	f, err := pe.Open(stub)
	if err != nil {
		return nil, fmt.Errorf("read EFI stub %s: %w", stub, err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		return nil, fmt.Errorf("read EFI stub %s: not a PE32+ image", stub)
	}
	align := uint64(oh.SectionAlignment)
	if align == 0 {
		return nil, fmt.Errorf("read EFI stub %s: section alignment 0", stub)
	}
	var end uint64
	for _, s := range f.Sections {
		if e := uint64(s.VirtualAddress) + uint64(max(s.VirtualSize, s.Size)); e > end {
			end = e
		}
	}
	up := func(n uint64) uint64 { return (n + align - 1) / align * align }
	vma := up(end)
	var args []string
	for _, s := range sections {
		fi, err := os.Stat(s.File)
		if err != nil {
			return nil, fmt.Errorf("unified kernel image section %s: %w", s.Name, err)
		}
		args = append(args, "--add-section", s.Name+"="+s.File,
			"--change-section-vma", fmt.Sprintf("%s=0x%x", s.Name, oh.ImageBase+vma))
		vma = up(vma + uint64(fi.Size()))
	}
	return args, nil
}

// Build writes out from stub and sections with objcopy (the cross binutils'
// aarch64-linux-gnu-objcopy for arm64, which knows pei-aarch64-little).
func Build(ctx context.Context, objcopy, stub, out string, sections []Section) error {
	args, err := Plan(stub, sections)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("build unified kernel image: %w", err)
	}
	cmd := exec.CommandContext(ctx, objcopy, append(args, stub, out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build unified kernel image %s: %s: %w: %s", out, objcopy, err, strings.TrimSpace(string(b)))
	}
	return nil
}
