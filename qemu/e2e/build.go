package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/podboot/podboot/internal/testenv"
)

// builderPkg is the firmware builder `make image` runs.
const builderPkg = "./rootfs/cmd/mkfirmware"

// builder returns the repository root and checks that the builder exists.
func builder() (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, builderPkg)); err != nil {
		return "", fmt.Errorf("the firmware builder %s is missing: %w", builderPkg, err)
	}
	return root, nil
}

func goRun(root string, args ...string) (string, error) {
	cmd := exec.Command("go", append([]string{"run", builderPkg}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go run %s %s: %w\n%s", builderPkg, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ExampleImages writes the arm64 stand-in images (OCI archives built from
// busybox-static) to dir, as `make image` does for the examples: busybox,
// or the repositories named.
func ExampleImages(dir string, repos ...string) error {
	root, err := builder()
	if err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	// The test pods use busybox only; fewer archives, quicker boots.
	if len(repos) == 0 {
		repos = []string{"busybox"}
	}
	_, err = goRun(root, "example-images", "-arch", "arm64", "-only", strings.Join(repos, ","), "-out", dir)
	return err
}

// BuildImage runs the firmware builder for board with the manifests in
// pods and the archives in images, writing the image directory out (the
// equivalent of make image BOARD=board PODS=pods IMAGES=images, into out
// rather than out/<board>). It returns the builder's output and how long
// it took.
func BuildImage(board, pods, images, out string) (string, time.Duration, error) {
	root, err := builder()
	if err != nil {
		return "", 0, err
	}
	// The builder runs in the repository root: paths must not be relative.
	for _, p := range []*string{&pods, &images, &out} {
		if *p, err = filepath.Abs(*p); err != nil {
			return "", 0, err
		}
	}
	start := time.Now()
	log, err := goRun(root, "-board", board, "-pods", pods, "-images", images, "-out", out)
	return log, time.Since(start), err
}

// BuildPodctl builds the host's podctl into dir and returns its path.
func BuildPodctl(dir string) (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "podctl")
	cmd := exec.Command("go", "build", "-o", bin, "./tools/podctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build podctl: %w\n%s", err, out)
	}
	return bin, nil
}
