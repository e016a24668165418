# podboot — see README.md. Every target works from a clean clone on Debian 12 as root.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin

# Pinned runtime versions, built from the Go module proxy.
CONTAINERD_VERSION := v2.4.2
RUNC_VERSION := v1.5.2
# The standard CNI plugins podagent drives the pod network with (libcni).
CNI_PLUGINS_VERSION := v1.9.1
# Only what the pod network runs: podboot brings loopback up itself and
# publishes hostPorts through its own nftables rules (portmap execs nft).
CNI_PLUGINS := main/bridge ipam/host-local

# Debian packages the build and the tests need. busybox-static supplies the
# local images (no registry is reachable), libseccomp-dev and pkg-config let
# runc build with seccomp.
APT_PACKAGES := busybox-static libseccomp-dev pkg-config iproute2 e2fsprogs
# The firmware image: QEMU and its UEFI firmware for the boards tested here,
# the arm64 cross compiler and libseccomp for runc, and the partitioning and
# FAT tools for the boot partitions (no root, no loop devices).
APT_PACKAGES += qemu-system-arm qemu-efi-aarch64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
	libseccomp-dev:arm64 dosfstools mtools fdisk xz-utils zstd

DEV_FLASH ?= $(CURDIR)/examples
DEV_STATE ?= /tmp/podboot-dev
DEV_LISTEN ?= 127.0.0.1:8080

GO_BINARIES := podagent podctl devnode mkimage

# The shared/ folder (design notes, conformance examples) lives beside the
# repository; a clone made elsewhere finds it beside the repository it was
# cloned from.
ORIGIN := $(shell git config --get remote.origin.url 2>/dev/null)
PODBOOT_SHARED ?= $(firstword $(wildcard $(CURDIR)/../shared $(if $(ORIGIN),$(ORIGIN)/../shared)))

.PHONY: all build deps test tidy-check test-unit dev run image examples-images bench clean

all: build

deps: .cache/apt-$(shell echo $(APT_PACKAGES) | md5sum | cut -c1-8)

# A package installed for two architectures (libseccomp-dev and
# libseccomp-dev:arm64) is ambiguous to `dpkg -s` without its architecture.
.cache/apt-%:
	@missing=$$(arch=$$(dpkg --print-architecture); for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || dpkg -s $$p:$$arch >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo ">> installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root, or: sudo dpkg --add-architecture arm64 && sudo apt-get update && sudo apt-get install -y $$missing" >&2; exit 1; fi; \
	  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v kubectl >/dev/null || echo ">> note: kubectl not found; the kubectl tests need /usr/bin/kubectl (v1.32)"
	@mkdir -p .cache && touch $@

build: deps $(addprefix $(BIN)/,$(GO_BINARIES)) $(BIN)/.containerd-$(CONTAINERD_VERSION) $(BIN)/.runc-$(RUNC_VERSION) $(BIN)/.cni-plugins-$(CNI_PLUGINS_VERSION)

$(BIN)/podagent: FORCE ; $(GO) build -trimpath -o $@ ./agent/cmd/podagent
$(BIN)/podctl: FORCE ; $(GO) build -trimpath -o $@ ./tools/podctl
$(BIN)/devnode: FORCE ; $(GO) build -trimpath -o $@ ./tools/devnode
$(BIN)/mkimage: FORCE ; $(GO) build -trimpath -o $@ ./tools/mkimage

# containerd, its runc shim and ctr are pure Go; runc needs cgo for seccomp.
$(BIN)/.containerd-$(CONTAINERD_VERSION):
	@echo ">> building containerd $(CONTAINERD_VERSION) (cached in bin/ after the first build)"
	CGO_ENABLED=0 GOBIN=$(BIN) $(GO) install -trimpath -ldflags='-s -w' \
	  github.com/containerd/containerd/v2/cmd/containerd@$(CONTAINERD_VERSION) \
	  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$(CONTAINERD_VERSION) \
	  github.com/containerd/containerd/v2/cmd/ctr@$(CONTAINERD_VERSION)
	@touch $@

$(BIN)/.runc-$(RUNC_VERSION):
	@echo ">> building runc $(RUNC_VERSION) with seccomp"
	CGO_ENABLED=1 GOBIN=$(BIN) $(GO) install -trimpath -tags seccomp -ldflags='-s -w' \
	  github.com/opencontainers/runc@$(RUNC_VERSION)
	@touch $@

# The CNI plugins are pure Go. They go to bin/cni/, a directory of plugins
# only: libcni runs whatever its plugin path holds by the network's type.
$(BIN)/.cni-plugins-$(CNI_PLUGINS_VERSION):
	@echo ">> building the CNI plugins $(CNI_PLUGINS_VERSION) into bin/cni/"
	CGO_ENABLED=0 GOBIN=$(BIN)/cni $(GO) install -trimpath -ldflags='-s -w' \
	  $(foreach p,$(CNI_PLUGINS),github.com/containernetworking/plugins/plugins/$(p)@$(CNI_PLUGINS_VERSION))
	@touch $@

# Local stand-in images (busybox-based) for the examples.
examples-images: build
	$(BIN)/mkimage -arch $$($(GO) env GOARCH) -busybox /bin/busybox -o $(DEV_FLASH)/images

# make test: unit tests, integration tests against a real containerd+runc,
# and kubectl tests. PODBOOT_INTEGRATION=1 turns "skip" into "fail" for tests
# that need root or binaries, so CI can never pass by skipping.
test: build tidy-check
	PODBOOT_INTEGRATION=1 PODBOOT_SHARED=$(PODBOOT_SHARED) $(GO) test -count=1 -timeout 40m ./...

# go.mod must be what `go mod tidy` makes of it: the image build's makebb
# is kept by go.mod's tool directive, so tidying can never break it.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; exit 1; }

test-unit:
	$(GO) test -count=1 ./...

# make dev: the example pods on this host, through a private containerd.
dev: examples-images
	$(BIN)/devnode --flash $(DEV_FLASH) --state $(DEV_STATE) --listen $(DEV_LISTEN)

# make image: the firmware for BOARD (qemu-arm64, rpi4, rpi5, generic-arm64)
# in out/BOARD/, with the manifests in PODS and the OCI archives in IMAGES on
# its flash. By default: the examples, with arm64 stand-in images built from
# Debian's busybox-static.
BOARD ?= qemu-arm64
PODS ?= $(CURDIR)/examples/pods
EXAMPLE_IMAGES := $(CURDIR)/out/images-arm64
IMAGES ?= $(EXAMPLE_IMAGES)
DEVICE ?=
MKFIRMWARE := $(GO) run ./rootfs/cmd/mkfirmware

image: deps $(if $(filter $(EXAMPLE_IMAGES),$(IMAGES)),$(EXAMPLE_IMAGES)/.done)
	$(MKFIRMWARE) -board $(BOARD) -pods $(PODS) -images $(IMAGES) $(if $(DEVICE),-device $(DEVICE)) -out out/$(BOARD)

# Only the images examples/pods uses: the board imports every archive on
# its flash at each boot. `mkfirmware example-images -out DIR` (no -only)
# writes all the stand-ins.
$(EXAMPLE_IMAGES)/.done: deps
	rm -rf $(EXAMPLE_IMAGES)
	$(MKFIRMWARE) example-images -arch arm64 -only busybox,nginx -out $(EXAMPLE_IMAGES)
	@touch $@

# make run: build the qemu-arm64 image with the examples, boot it in QEMU,
# wait for the pods and show them; Ctrl-C powers the board off.
API_PORT ?= 6443
run: deps
	$(MAKE) image BOARD=qemu-arm64
	./qemu/run out/qemu-arm64 --api-port $(API_PORT)

bench: build
	./bench/run.sh

.PHONY: bench-resources bench-network bench-soak bench-flash
bench-resources: build
	./bench/resources.sh

bench-network: build
	./bench/network.sh

# A devnode under churn for 30 minutes (SOAK_ARGS=-duration 4h for hours):
# every series must stay flat. bench/README.md, "Soak".
bench-soak: build
	./bench/soak.sh $(SOAK_ARGS)

# What the qemu-arm64 board writes to its flash at rest and per event
# (about 40 minutes). bench/README.md, "Flash writes"; docs/wear.md.
bench-flash: deps
	./bench/flashwrites.sh

clean:
	rm -rf bin out .cache examples/images

FORCE:
