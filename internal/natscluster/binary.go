package natscluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sync"
)

// ServerModule is the module whose main package is nats-server: [Binary]
// builds the version this module requires, so a cluster runs the server
// the embedded broker runs.
const ServerModule = "github.com/nats-io/nats-server/v2"

// buildMu serialises the builds of one process; the rename into place
// makes builds by several processes safe.
var buildMu sync.Mutex

// Binary returns the path of a nats-server executable at the version of
// [ServerModule] this module requires. It is built once per machine and
// version into os.UserCacheDir()/ferry/nats-server-<version> and reused
// after that; the build writes a temporary file and renames it into
// place, so processes that build at the same time each get a whole
// binary. Building needs the go command on PATH and a working directory
// inside this module.
func Binary(ctx context.Context) (string, error) {
	version, err := serverVersion(ctx)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "ferry")
	bin := filepath.Join(dir, "nats-server-"+version)
	buildMu.Lock()
	defer buildMu.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("natscluster: nats-server %s is built with the go command, which is not on PATH: %w", version, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("natscluster: build nats-server %s: %w", version, err)
	}
	tmp, err := os.MkdirTemp(dir, ".build-*")
	if err != nil {
		return "", fmt.Errorf("natscluster: build nats-server %s: %w", version, err)
	}
	defer os.RemoveAll(tmp)
	out, err := exec.CommandContext(ctx, goCmd, "build", "-o", filepath.Join(tmp, "nats-server"), ServerModule).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("natscluster: build nats-server %s: %w\n%s", version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "nats-server"), bin); err != nil {
		return "", fmt.Errorf("natscluster: build nats-server %s: %w", version, err)
	}
	return bin, nil
}

// serverVersion returns the version of [ServerModule] this module
// requires: from the running binary's build information, or from the go
// command when that records no dependencies (as a test binary's does not).
func serverVersion(ctx context.Context) (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path != ServerModule {
				continue
			}
			if dep.Replace != nil {
				dep = dep.Replace
			}
			if dep.Version != "" {
				return dep.Version, nil
			}
		}
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("natscluster: the version of %s is asked of the go command, which is not on PATH: %w", ServerModule, err)
	}
	out, err := exec.CommandContext(ctx, goCmd, "list", "-m", "-f", "{{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}", ServerModule).Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(exitErr.Stderr))
	}
	if err != nil {
		return "", fmt.Errorf("natscluster: go list -m %s (run it inside this module): %w", ServerModule, err)
	}
	version := string(bytes.TrimSpace(out))
	if version == "" {
		return "", fmt.Errorf("natscluster: go list -m %s names no version (a replacement by a directory?)", ServerModule)
	}
	return version, nil
}
