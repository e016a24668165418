package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/podboot/podboot/bench/podbench"
)

// results collects the measures by kind, in the order first seen.
type results struct {
	kinds []kind
	by    map[kind][]measure
	idle  uint64 // flash bytes written in idleWindow with no update
}

func (r *results) add(k kind, m measure) {
	if r.by == nil {
		r.by = map[kind][]measure{}
	}
	if !slices.Contains(r.kinds, k) {
		r.kinds = append(r.kinds, k)
	}
	r.by[k] = append(r.by[k], m)
}

// markdown is the results as a table: medians and maxima of the times,
// medians of the bytes (they vary little: the journal's blocks).
func (r *results) markdown(cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "otabench: %d updates of each kind, %d pods per generation, pollInterval %s, healthDeadline %s, stableFor %s; %s, %d CPUs\n\n",
		cfg.Runs, cfg.Pods, cfg.Poll, cfg.HealthDeadline, cfg.StableFor, time.Now().UTC().Format(time.RFC3339), runtime.NumCPU())
	b.WriteString("| update | n | to the new pods Ready (p50, max) | to the rollback's verdict (p50, max) | flash bytes written (p50, max) | generation directory |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, k := range r.kinds {
		ms := r.by[k]
		var ready, verdict []time.Duration
		var written, gen []uint64
		for _, m := range ms {
			ready = append(ready, m.ready)
			verdict = append(verdict, m.verdict)
			written = append(written, m.bytes)
			gen = append(gen, uint64(m.genBytes))
		}
		rs, vs := podbench.Summarize(ready), podbench.Summarize(verdict)
		readyCell := fmt.Sprintf("%s, %s", podbench.FormatDuration(rs.P50), podbench.FormatDuration(rs.Max))
		verdictCell := "—"
		genCell := kib(median(gen))
		if k == kindFailing {
			// Its "ready" is the previous generation's pods back.
			readyCell = "— (previous back: " + readyCell + ")"
			verdictCell = fmt.Sprintf("%s, %s", podbench.FormatDuration(vs.P50), podbench.FormatDuration(vs.Max))
			genCell = "removed"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s, %s | %s |\n", k, len(ms), readyCell, verdictCell, kib(median(written)), kib(slices.Max(written)), genCell)
	}
	fmt.Fprintf(&b, "| no update, %s | 1 | | | %s | |\n", idleWindow, kib(r.idle))
	return b.String()
}

func median(v []uint64) uint64 {
	s := slices.Sorted(slices.Values(v))
	return s[(len(s)-1)/2]
}

func kib(n uint64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/1024)
}

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
