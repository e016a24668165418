package imagebuild

import (
	"embed"
	"io/fs"
)

//go:embed scripts
var scripts embed.FS

// script returns an executable file of the image from scripts/.
func script(path, name string) File {
	return File{Path: path, Mode: 0o755, Data: mustScript(name)}
}

// mustScript reads an embedded script; the names are constants of this
// package, so a missing one is caught by the package's tests.
func mustScript(name string) []byte {
	b, err := fs.ReadFile(scripts, "scripts/"+name)
	if err != nil {
		panic("imagebuild: missing embedded script " + name)
	}
	return b
}

// lib are the stand-ins' shared helpers (a tiny nc-based server).
func lib() []File {
	return []File{
		script("/usr/lib/podboot/serve", "serve"),
		{Path: "/usr/lib/podboot/http.sh", Mode: 0o644, Data: mustScript("http.sh")},
		script("/usr/lib/podboot/hello", "hello"),
	}
}

// program is the Go stand-in name of standins/, built into the image at path.
func program(path, name string) File { return File{Path: path, Mode: 0o755, Program: name} }

func dir(path string) File { return File{Path: path, Mode: fs.ModeDir | 0o755} }

// StandIns are the local images named like the ones the Kubernetes docs'
// example pods reference, each a busybox that behaves enough like the real
// image for those examples: same entrypoint/cmd shape, ports, stop signal
// and the files the examples touch. Where shell and nc are not enough
// (agnhost, goproxy, etcd's gRPC health) the image's program is a small Go
// program of standins/, built by Build for the image's architecture.
func StandIns(arch, busybox string) []Spec {
	specs := []Spec{
		{
			Tags: []string{"busybox:latest", "busybox:1.28", "busybox:1.36", "busybox:1.37"},
			Cmd:  []string{"sh"},
		},
		{
			Tags: []string{"registry.k8s.io/busybox:latest", "registry.k8s.io/busybox:1.27.2", "registry.k8s.io/busybox:1.24"},
			Cmd:  []string{"sh"},
		},
		{
			Tags: []string{"alpine:latest", "alpine:3"},
			Cmd:  []string{"/bin/sh"},
		},
		{
			Tags:  []string{"debian:latest", "debian:bookworm", "debian:12", "ubuntu:latest"},
			Cmd:   []string{"bash"},
			Files: []File{script("/bin/bash", "bash"), script("/usr/bin/printenv", "printenv")},
		},
		{
			Tags:         []string{"nginx:latest", "nginx:1.29", "nginx:1.14.2", "nginx:alpine"},
			Entrypoint:   []string{"/docker-entrypoint.sh"},
			Cmd:          []string{"nginx", "-g", "daemon off;"},
			ExposedPorts: []string{"80/tcp"},
			StopSignal:   "SIGQUIT",
			Files: []File{
				script("/docker-entrypoint.sh", "nginx-entrypoint"),
				script("/usr/sbin/nginx", "nginx"),
				{Path: "/usr/share/nginx/html/index.html", Mode: 0o644, Data: mustScript("nginx-index.html")},
				dir("/etc/nginx/conf.d"),
				dir("/run"),
				dir("/var/log/nginx"),
			},
		},
		{
			Tags:         []string{"httpd:latest", "httpd:2.4"},
			Cmd:          []string{"httpd-foreground"},
			Env:          []string{"PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HTTPD_PREFIX=/usr/local/apache2"},
			WorkingDir:   "/usr/local/apache2",
			ExposedPorts: []string{"80/tcp"},
			StopSignal:   "SIGWINCH",
			Files: []File{
				script("/usr/local/apache2/bin/httpd-foreground", "httpd-foreground"),
				{Path: "/usr/local/apache2/htdocs/index.html", Mode: 0o644, Data: []byte("<html><body><h1>It works!</h1></body></html>\n")},
				script("/bin/bash", "bash"),
			},
		},
		{
			Tags:         []string{"redis:latest", "redis:5", "redis:7"},
			Entrypoint:   []string{"docker-entrypoint.sh"},
			Cmd:          []string{"redis-server"},
			WorkingDir:   "/data",
			ExposedPorts: []string{"6379/tcp"},
			Files: append(lib(),
				script("/usr/local/bin/docker-entrypoint.sh", "redis-entrypoint"),
				script("/usr/local/bin/redis-server", "redis-server"),
				script("/usr/local/bin/redis-cli", "redis-cli"),
				script("/usr/lib/podboot/redis-respond", "redis-respond"),
				File{Path: "/data", Mode: fs.ModeDir | 0o755},
				dir("/usr/local/etc/redis"),
			),
		},
		{
			Tags:       []string{"registry.k8s.io/e2e-test-images/agnhost:2.40", "registry.k8s.io/e2e-test-images/agnhost:2.39"},
			Entrypoint: []string{"/agnhost"},
			Cmd:        []string{"pause"},
			Files:      []File{program("/agnhost", "agnhost")},
		},
		{
			Tags:         []string{"registry.k8s.io/goproxy:0.1"},
			Cmd:          []string{"/goproxy"},
			ExposedPorts: []string{"8080/tcp"},
			Files:        []File{program("/goproxy", "goproxy")},
		},
		{
			Tags:         []string{"registry.k8s.io/etcd:3.5.1-0"},
			Cmd:          []string{"/usr/local/bin/etcd"},
			ExposedPorts: []string{"2379/tcp", "2380/tcp", "4001/tcp", "7001/tcp"},
			Files: []File{
				program("/usr/local/bin/etcd", "etcd"),
				dir("/var/etcd"),
				dir("/var/lib/etcd"),
			},
		},
		{
			Tags:         []string{"gcr.io/google-samples/hello-app:2.0", "gcr.io/google-samples/hello-app:1.0"},
			Cmd:          []string{"/hello-app"},
			ExposedPorts: []string{"8080/tcp"},
			Files:        append(lib(), script("/hello-app", "hello-app")),
		},
		{
			Tags:         []string{"gcr.io/google-samples/node-hello:1.0"},
			Cmd:          []string{"node", "server.js"},
			ExposedPorts: []string{"8080/tcp"},
			Files:        append(lib(), script("/usr/local/bin/node", "node")),
		},
		{
			Tags:       []string{"polinux/stress:latest"},
			Cmd:        []string{"stress", "--verbose", "--cpu", "1"},
			Files:      []File{script("/usr/bin/stress", "stress"), script("/usr/local/bin/stress", "stress")},
			WorkingDir: "/",
		},
		{
			Tags:       []string{"vish/stress:latest"},
			Entrypoint: []string{"/stress", "-logtostderr"},
			Files:      []File{script("/stress", "vish-stress")},
		},
	}
	for i := range specs {
		specs[i].Arch = arch
		specs[i].Busybox = busybox
	}
	return specs
}
