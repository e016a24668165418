// Command flashwear measures what the qemu-arm64 image writes to its
// flash: at boot, at rest with 10 pods running, per pod start and
// deletion through the API, per container restart and per reboot, and
// which files each write is (package bench/flashwear). It builds the
// image from the working tree unless -image names one. bench/flashwrites.sh
// runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/podboot/podboot/bench/flashwear"
)

func main() {
	var c flashwear.Config
	var report, jsonOut string
	var keep bool
	flag.StringVar(&c.Work, "work", "", "scratch directory (default: a new one under $TMPDIR, removed at the end)")
	flag.BoolVar(&keep, "keep", false, "keep the scratch directory (image, console.log)")
	flag.StringVar(&c.Image, "image", "", "a built qemu-arm64 image directory to use instead of building one (its pods must all run)")
	flag.IntVar(&c.Pods, "pods", 10, "pods on the built image's flash")
	flag.DurationVar(&c.Settle, "settle", time.Minute, "wait after each event before its writes are counted (writeback: 30 s + 5 s)")
	flag.DurationVar(&c.Rest, "rest", 20*time.Minute, "the window at rest")
	flag.DurationVar(&c.RestSample, "rest-sample", time.Minute, "read the counters every, at rest")
	flag.IntVar(&c.Starts, "starts", 2, "pods created (and then deleted) through the API")
	flag.IntVar(&c.Restarts, "restarts", 2, "container restarts of a crash-looping pod to count")
	flag.BoolVar(&c.Reboot, "reboot", true, "reboot the board and count the reboot's writes")
	flag.StringVar(&report, "report", "", "also write the report as markdown to this file")
	flag.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c.Log = log
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, keep, report, jsonOut); err != nil {
		log.Error("flashwear", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c flashwear.Config, keep bool, report, jsonOut string) error {
	if c.Work == "" {
		var err error
		if c.Work, err = os.MkdirTemp("", "flashwear-"); err != nil {
			return fmt.Errorf("make scratch directory: %w", err)
		}
	}
	if !keep {
		defer os.RemoveAll(c.Work)
	}
	rep, runErr := flashwear.Run(ctx, c)
	var md strings.Builder
	fmt.Fprintf(&md, "Started %s UTC. ", rep.Started.UTC().Format("2006-01-02 15:04"))
	if err := flashwear.WriteMarkdown(&md, rep); err != nil {
		return errors.Join(runErr, err)
	}
	if runErr != nil {
		fmt.Fprintf(&md, "\nThe run failed: %v\n", runErr)
	}
	os.Stdout.WriteString(md.String())
	if report != "" {
		if err := os.WriteFile(report, []byte(md.String()), 0o644); err != nil {
			return errors.Join(runErr, fmt.Errorf("write report: %w", err))
		}
	}
	if jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(jsonOut, data, 0o644)
		}
		if err != nil {
			return errors.Join(runErr, fmt.Errorf("write JSON report: %w", err))
		}
	}
	return runErr
}
