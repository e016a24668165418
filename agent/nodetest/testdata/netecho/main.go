// Command netecho is the pod-side server of the network tests, built
// static and mounted into stand-in pods (busybox has no UDP server): it
// answers each TCP connection's first line, and each UDP datagram, with
// "<name> <client ip>", as testenv.NetNS.Serve does on the test's side.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	name := flag.String("name", "netecho", "name in the answers")
	addr := flag.String("addr", ":8080", "TCP and UDP address to listen on")
	flag.Parse()
	// As a container's PID 1 it gets no default action for SIGTERM.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-stop; os.Exit(0) }()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%s listening on %s (tcp and udp)", *name, *addr)
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				log.Fatal(err)
			}
			host, _, _ := net.SplitHostPort(from.String())
			_, _ = pc.WriteTo(fmt.Appendf(nil, "%s %s\n", *name, host), from)
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "%s %s\n", *name, host)
		}()
	}
}
