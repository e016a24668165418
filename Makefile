# podboot — see README.md. Every target works from a clean clone on Debian 12 as root.

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin

# Pinned runtime versions, built from the Go module proxy.
CONTAINERD_VERSION := v2.4.2
RUNC_VERSION := v1.5.2

# Debian packages the build and the tests need. busybox-static supplies the
# local images (no registry is reachable), libseccomp-dev and pkg-config let
# runc build with seccomp.
APT_PACKAGES := busybox-static libseccomp-dev pkg-config iproute2 e2fsprogs

DEV_FLASH ?= $(CURDIR)/examples
DEV_STATE ?= /tmp/podboot-dev
DEV_LISTEN ?= 127.0.0.1:8080

GO_BINARIES := podagent podctl devnode mkimage

# The shared/ folder (design notes, conformance examples) lives beside the
# repository; a clone made elsewhere finds it beside the repository it was
# cloned from.
ORIGIN := $(shell git config --get remote.origin.url 2>/dev/null)
PODBOOT_SHARED ?= $(firstword $(wildcard $(CURDIR)/../shared $(if $(ORIGIN),$(ORIGIN)/../shared)))

.PHONY: all build deps test test-unit dev run examples-images bench clean

all: build

deps: .cache/apt-$(shell echo $(APT_PACKAGES) | md5sum | cut -c1-8)

.cache/apt-%:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo ">> installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root, or: sudo apt-get install -y $$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v kubectl >/dev/null || echo ">> note: kubectl not found; the kubectl tests need /usr/bin/kubectl (v1.32)"
	@mkdir -p .cache && touch $@

build: deps $(addprefix $(BIN)/,$(GO_BINARIES)) $(BIN)/.containerd-$(CONTAINERD_VERSION) $(BIN)/.runc-$(RUNC_VERSION)

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

# Local stand-in images (busybox-based) for the examples.
examples-images: build
	$(BIN)/mkimage -arch $$($(GO) env GOARCH) -busybox /bin/busybox -o $(DEV_FLASH)/images

# make test: unit tests, integration tests against a real containerd+runc,
# and kubectl tests. PODBOOT_INTEGRATION=1 turns "skip" into "fail" for tests
# that need root or binaries, so CI can never pass by skipping.
test: build
	PODBOOT_INTEGRATION=1 PODBOOT_SHARED=$(PODBOOT_SHARED) $(GO) test -count=1 -timeout 40m ./...

test-unit:
	$(GO) test -count=1 ./...

# make dev: the example pods on this host, through a private containerd.
dev: examples-images
	$(BIN)/devnode --flash $(DEV_FLASH) --state $(DEV_STATE) --listen $(DEV_LISTEN)

# make run boots the firmware image in QEMU. The image builder is the next
# issue; until it lands, run the same agent on this host.
run:
	@echo ">> the QEMU image is not built yet (see README: status); running the examples on this host instead"
	@echo ">> in another terminal: kubectl --server http://$(DEV_LISTEN) get pods -o wide"
	$(MAKE) dev

bench: build
	./bench/run.sh

clean:
	rm -rf bin out .cache examples/images

FORCE:
