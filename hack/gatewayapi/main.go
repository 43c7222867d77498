// Command gatewayapi writes internal/gatewayapi/crds: the Kubernetes Gateway API standard-channel CRDs, generated
// with controller-tools from the Go API types of the sigs.k8s.io/gateway-api module that go.mod requires. Nothing is
// taken from the module's YAML: bumping the module in go.mod and running `make gatewayapi-crds` is the whole upgrade,
// and test/generated fails while the committed files and this generator disagree.
//
// Usage: go run ./hack/gatewayapi [-out DIR]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	out := flag.String("out", "internal/gatewayapi/crds", "directory that receives one <group>_<plural>.yaml per CRD")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gatewayapi:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	files, err := generate()
	if err != nil {
		return err
	}
	return write(out, files)
}

// write replaces every YAML file of dir with files, so a CRD that a newer module no longer puts in the standard
// channel disappears instead of lingering.
func write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	stale, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, f := range stale {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("removing %s: %w", f, err)
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}
