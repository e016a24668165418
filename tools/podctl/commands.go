package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"runtime/debug"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
)

const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

// getPods prints the server's Table of pods as kubectl does: the columns
// of priority 0, upper-case headers, NAMESPACE first with -A.
func getPods(ctx context.Context, c *client, ns string, all bool, stdout, stderr io.Writer) error {
	path := "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods"
	if all {
		path = "/api/v1/pods"
	}
	resp, err := c.get(ctx, path, url.Values{"includeObject": {"Metadata"}}, tableAccept)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var table metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&table); err != nil {
		return fmt.Errorf("decode pods table: %w", err)
	}
	if table.Kind != "Table" {
		return fmt.Errorf("decode pods table: the server answered a %q, not a Table", table.Kind)
	}
	if len(table.Rows) == 0 {
		if all {
			fmt.Fprintln(stderr, "No resources found")
		} else {
			fmt.Fprintf(stderr, "No resources found in %s namespace.\n", ns)
		}
		return nil
	}
	return printTable(stdout, &table, all)
}

// Kubernetes' tab writer settings (cli-runtime printers.GetNewTabWriter).
const (
	tabMinWidth = 6
	tabWidth    = 4
	tabPadding  = 3
)

func printTable(out io.Writer, table *metav1.Table, withNamespace bool) error {
	w := tabwriter.NewWriter(out, tabMinWidth, tabWidth, tabPadding, ' ', 0)
	var cols []int
	if withNamespace {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	for i, col := range table.ColumnDefinitions {
		if col.Priority != 0 {
			continue
		}
		if len(cols) > 0 {
			fmt.Fprint(w, "\t")
		}
		cols = append(cols, i)
		fmt.Fprint(w, upper(col.Name))
	}
	fmt.Fprintln(w)
	for _, row := range table.Rows {
		if withNamespace {
			fmt.Fprintf(w, "%s\t", rowNamespace(row))
		}
		for j, i := range cols {
			if j > 0 {
				fmt.Fprint(w, "\t")
			}
			if i < len(row.Cells) && row.Cells[i] != nil {
				fmt.Fprint(w, row.Cells[i])
			}
		}
		fmt.Fprintln(w)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("print table: %w", err)
	}
	return nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// rowNamespace reads the namespace of the row's object (includeObject=Metadata).
func rowNamespace(row metav1.TableRow) string {
	if len(row.Object.Raw) == 0 {
		return ""
	}
	var m metav1.PartialObjectMetadata
	if err := json.Unmarshal(row.Object.Raw, &m); err != nil {
		return ""
	}
	return m.Namespace
}

// podLogs streams a container's log.
func podLogs(ctx context.Context, c *client, ns, pod, container string, follow bool, stdout io.Writer) error {
	q := url.Values{}
	if container != "" {
		q.Set("container", container)
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.get(ctx, "/api/v1/namespaces/"+url.PathEscape(ns)+"/pods/"+url.PathEscape(pod)+"/log", q, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(stdout, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs of pod %q: %w", pod, err)
	}
	return nil
}

// power asks the agent to power the board off or reboot it, and prints
// the agent's answer ("powering off", "rebooting").
func power(ctx context.Context, c *client, cmd string, stdout io.Writer) error {
	st, err := c.post(ctx, "/podboot/v1/"+cmd)
	if err != nil {
		return err
	}
	msg := st.Message
	if msg == "" {
		msg = cmd + " requested"
	}
	fmt.Fprintln(stdout, msg)
	return nil
}

// printVersion prints the client's version and the server's, as kubectl
// version does.
func printVersion(ctx context.Context, c *client, stdout io.Writer) error {
	fmt.Fprintf(stdout, "Client Version: %s\n", clientVersion())
	resp, err := c.get(ctx, "/version", nil, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var info version.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return fmt.Errorf("decode server version: %w", err)
	}
	fmt.Fprintf(stdout, "Server Version: %s\n", info.GitVersion)
	return nil
}

// clientVersion is podctl's module version, or the VCS revision of a
// development build.
func clientVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
