// Command mkcpio writes a gzip-compressed newc initramfs of a directory
// with u-root's cpio package, adding /dev/console so that the kernel gives
// PID 1 its stdio (the smoke test needs no cpio(1) and no root).
package main

import (
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/u-root/u-root/pkg/cpio"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mkcpio DIR OUT.cpio.gz")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "mkcpio:", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	w := cpio.Newc.Writer(gz)
	rec := cpio.NewRecorder()
	var recs []cpio.Record
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		r, err := rec.GetRecord(path)
		if err != nil {
			return fmt.Errorf("record %s: %w", path, err)
		}
		r.Name = rel
		recs = append(recs, cpio.MakeReproducible(r))
		return nil
	})
	if err != nil {
		return err
	}
	recs = append(recs, cpio.Directory("dev", 0o755), cpio.CharDev("dev/console", 0o600, 5, 1))
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}
