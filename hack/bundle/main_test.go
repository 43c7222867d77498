package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestNonSemverVersionExitsTwoWithOneLine(t *testing.T) {
	for _, version := range []string{"x", "0.1", "v0.1.0", ""} {
		t.Run(fmt.Sprintf("VERSION %q is refused before anything is written", version), func(t *testing.T) {
			root := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := run([]string{"--version", version, "--image", "meshwright/meshwright:v0.1.0", "--root", root}, &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if want := fmt.Sprintf("VERSION must be semver (e.g. 0.1.0), got %q\n", version); stderr.String() != want {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("wrote %v", entries)
			}
		})
	}
}

func TestGenerationFailureExitsOne(t *testing.T) {
	var stdout, stderr bytes.Buffer
	root := filepath.Join(t.TempDir(), "no-config-here")
	if code := run([]string{"--version", "0.1.0", "--image", "meshwright/meshwright:v0.1.0", "--root", root}, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1 (stderr %q)", code, stderr.String())
	}
}
