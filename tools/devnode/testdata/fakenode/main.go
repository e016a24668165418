// Command fakenode stands in for containerd and podagent in devnode's
// tests, by the name it is run as:
//
//   - containerd --config FILE: listens on the gRPC server plugin's address of FILE until
//     SIGTERM.
//   - podagent --flash F --state S --containerd SOCK --listen ADDR ...:
//     checks that SOCK answers, writes its arguments to S/agent.args,
//     serves 200 on /healthz, and on SIGTERM writes S/agent.stopped and
//     exits 0, unless F/ignore-sigterm exists.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	var err error
	switch filepath.Base(os.Args[0]) {
	case "containerd":
		err = containerd(os.Args[1:])
	case "podagent":
		err = podagent(os.Args[1:])
	default:
		err = fmt.Errorf("run me as containerd or podagent, not %q", os.Args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakenode:", err)
		os.Exit(1)
	}
}

func containerd(args []string) error {
	fs := flag.NewFlagSet("containerd", flag.ContinueOnError)
	config := fs.String("config", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, err := grpcAddress(*config)
	if err != nil {
		return err
	}
	l, err := net.Listen("unix", addr)
	if err != nil {
		return err
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
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	<-sigs
	return nil
}

func grpcAddress(config string) (string, error) {
	f, err := os.Open(config)
	if err != nil {
		return "", err
	}
	defer f.Close()
	inGRPC := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if strings.HasPrefix(line, "[") {
			inGRPC = line == `[plugins."io.containerd.server.v1.grpc"]`
		}
		if v, ok := strings.CutPrefix(line, "address = "); ok && inGRPC {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", fmt.Errorf("no gRPC server address in %s", config)
}

func podagent(args []string) error {
	fs := flag.NewFlagSet("podagent", flag.ContinueOnError)
	flash := fs.String("flash", "", "")
	state := fs.String("state", "", "")
	sock := fs.String("containerd", "", "")
	listen := fs.String("listen", "", "")
	fs.String("runc", "", "")
	fs.String("runc-root", "", "")
	fs.String("node-name", "", "")
	fs.String("cgroup-root", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := net.Dial("unix", *sock)
	if err != nil {
		return fmt.Errorf("containerd is not up: %w", err)
	}
	c.Close()
	if err := os.WriteFile(filepath.Join(*state, "agent.args"), []byte(strings.Join(args, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(*flash, "ignore-sigterm")); err == nil {
		signal.Ignore(syscall.SIGTERM)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	<-sigs
	return os.WriteFile(filepath.Join(*state, "agent.stopped"), []byte("yes\n"), 0o644)
}
