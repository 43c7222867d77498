package main

import (
	"bytes"
	"context"
	"debug/elf"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/meshwright/meshwright/internal/ociimage"
)

// managerLayout is a manager layout built from testdata/trivial, once for the package: cross-compiling costs seconds.
var managerLayout struct {
	dir    string
	stdout string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hack-image-")
	if err != nil {
		log.Fatal(err)
	}
	managerLayout.dir = filepath.Join(dir, "image")
	var stdout, stderr bytes.Buffer
	args := []string{"manager", "--package", "./testdata/trivial", "--out", managerLayout.dir, "--version", "0.1.0", "--revision", "abc123"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		log.Fatalf("building the test manager layout: exit %d: %s", code, stderr.String())
	}
	managerLayout.stdout = stdout.String()
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestManagerPrintsTheIndexAndEachPlatformDigest(t *testing.T) {
	artifact, err := ociimage.ReadLayout(managerLayout.dir)
	if err != nil {
		t.Fatalf("ReadLayout: %v", err)
	}
	want := regexp.MustCompile(`^` + regexp.QuoteMeta(managerLayout.dir) + `: index ` + artifact.Descriptor.Digest.String() + `\n` +
		`  linux/amd64  sha256:[0-9a-f]{64} \(layer [0-9.]+ MiB\)\n` +
		`  linux/arm64  sha256:[0-9a-f]{64} \(layer [0-9.]+ MiB\)\n$`)
	if !want.MatchString(managerLayout.stdout) {
		t.Errorf("manager printed:\n%s\nwant it to match %s", managerLayout.stdout, want)
	}
}

func TestExtractWritesAStaticBinaryForEachPlatform(t *testing.T) {
	for _, tc := range []struct {
		platform string
		machine  elf.Machine
	}{
		{platform: "linux/amd64", machine: elf.EM_X86_64},
		{platform: "linux/arm64", machine: elf.EM_AARCH64},
	} {
		t.Run(tc.platform+" gets a static "+tc.machine.String()+" /manager", func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "manager")
			res := runCLI("extract", "--layout", managerLayout.dir, "--platform", tc.platform, "--file", "/manager", "--to", to)
			if res.code != 0 {
				t.Fatalf("extract: exit %d: %s", res.code, res.stderr)
			}
			binary, err := elf.Open(to)
			if err != nil {
				t.Fatalf("%s is not an ELF file: %v", to, err)
			}
			defer binary.Close()
			if binary.Machine != tc.machine {
				t.Errorf("machine = %v, want %v", binary.Machine, tc.machine)
			}
			for _, prog := range binary.Progs {
				if prog.Type == elf.PT_INTERP {
					t.Errorf("the binary asks for a dynamic loader; an image without libc needs a static one")
				}
			}
		})
	}
}

func TestPush(t *testing.T) {
	server := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(server.Close)
	host := strings.TrimPrefix(server.URL, "http://")
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`))
	}))
	t.Cleanup(refusing.Close)
	refusingHost := strings.TrimPrefix(refusing.URL, "http://")
	missing := filepath.Join(t.TempDir(), "missing")

	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "without IMG exits 2 and says how to give it",
			args:       []string{"push", "--layout", managerLayout.dir, "--image", ""},
			wantCode:   2,
			wantStderr: "IMG is required, e.g. make docker-push IMG=registry.example.com/meshwright:v0.1.0\n",
		},
		{
			name:       "without BUNDLE_IMG names the bundle's variable and target",
			args:       []string{"push", "--layout", managerLayout.dir, "--var", "BUNDLE_IMG", "--image", ""},
			wantCode:   2,
			wantStderr: "BUNDLE_IMG is required, e.g. make bundle-push BUNDLE_IMG=registry.example.com/meshwright-bundle:v0.1.0\n",
		},
		{
			name:       "of a layout never built says which target builds it",
			args:       []string{"push", "--layout", missing, "--var", "CATALOG_IMG", "--image", host + "/c:v1"},
			wantCode:   1,
			wantStderr: "push: " + missing + " does not exist; build it first with make catalog-build\n",
		},
		{
			name:       "to a registry that refuses exits 1 with one line naming the registry and the reason",
			args:       []string{"push", "--layout", managerLayout.dir, "--image", refusingHost + "/meshwright:v0.1.0"},
			wantCode:   1,
			wantStderr: "push: pushing " + refusingHost + "/meshwright:v0.1.0 to registry " + refusingHost + ": HTTP 403 Forbidden (DENIED: requested access to the resource is denied)\n",
		},
		{
			name:       "to a registry that accepts prints the reference and the digest",
			args:       []string{"push", "--layout", managerLayout.dir, "--image", host + "/meshwright:v0.1.0"},
			wantCode:   0,
			wantStdout: "pushed " + host + "/meshwright:v0.1.0 (" + layoutDigest(t) + ")\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(tc.args...)
			if res.code != tc.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", res.code, tc.wantCode, res.stderr)
			}
			if res.stdout != tc.wantStdout {
				t.Errorf("stdout %q, want %q", res.stdout, tc.wantStdout)
			}
			if !strings.HasPrefix(res.stderr, tc.wantStderr) || strings.Count(res.stderr, "\n") > 1 {
				t.Errorf("stderr %q, want one line starting with %q", res.stderr, tc.wantStderr)
			}
		})
	}

	t.Run("leaves the index it printed at build time in the registry", func(t *testing.T) {
		ref, err := name.ParseReference(host + "/meshwright:v0.1.0")
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(ref)
		if err != nil {
			t.Fatalf("HEAD %s: %v", ref, err)
		}
		if desc.Digest.String() != layoutDigest(t) {
			t.Errorf("registry serves %s, built %s", desc.Digest, layoutDigest(t))
		}
	})
}

func layoutDigest(t *testing.T) string {
	t.Helper()
	artifact, err := ociimage.ReadLayout(managerLayout.dir)
	if err != nil {
		t.Fatalf("ReadLayout: %v", err)
	}
	return artifact.Descriptor.Digest.String()
}
