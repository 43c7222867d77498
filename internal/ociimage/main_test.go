package ociimage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// trivialBinaries holds a do-nothing Go program compiled for both platforms, built once for the package: a real
// compiler's output is what the ELF assertions need, and the manager itself takes minutes to cross-compile.
var trivialBinaries map[string][]byte

func TestMain(m *testing.M) {
	binaries, err := buildTrivialBinaries(amd64, arm64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	trivialBinaries = binaries
	os.Exit(m.Run())
}

func buildTrivialBinaries(platforms ...v1.Platform) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "ociimage-trivial-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sources := map[string]string{
		"go.mod":  "module trivial\n\ngo 1.26\n",
		"main.go": "package main\n\nfunc main() {}\n",
	}
	for name, content := range sources {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	binaries := map[string][]byte{}
	for _, platform := range platforms {
		out := filepath.Join(dir, "trivial-"+platform.Architecture)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+platform.OS, "GOARCH="+platform.Architecture,
			"GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
		if output, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building the trivial binary for %s: %w\n%s", platform.String(), err, output)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		binaries[platform.String()] = data
	}
	return binaries, nil
}

func testBinaries() []Binary {
	return []Binary{
		{Platform: amd64, Data: trivialBinaries[amd64.String()]},
		{Platform: arm64, Data: trivialBinaries[arm64.String()]},
	}
}

func testMetadata() Metadata {
	return Metadata{
		Source:      "https://github.com/meshwright/meshwright",
		Version:     "0.1.0",
		Revision:    "0123456789abcdef0123456789abcdef01234567",
		Title:       "Meshwright",
		Description: "Istio service mesh operator",
		Licenses:    "Apache-2.0",
	}
}

func mustManagerIndex(t *testing.T, binaries []Binary, meta Metadata) v1.ImageIndex {
	t.Helper()
	idx, err := ManagerIndex(binaries, meta)
	if err != nil {
		t.Fatalf("ManagerIndex: %v", err)
	}
	return idx
}

func mustDigest(t *testing.T, artifact interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	digest, err := artifact.Digest()
	if err != nil {
		t.Fatalf("computing digest: %v", err)
	}
	return digest
}
