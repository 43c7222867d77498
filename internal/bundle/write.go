package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Write stages the files in a temporary directory under root, validates the staged bundle and catalog, and only
// then moves each generated directory (and bundle.Dockerfile) into place, so a failed or interrupted run never
// leaves a half-written or invalid bundle behind. Files outside the generated units (bundle/README.md) are kept.
func Write(root string, files Files) error {
	staging, err := os.MkdirTemp(root, ".bundle-staging-")
	if err != nil {
		return fmt.Errorf("creating a staging directory: %w", err)
	}
	defer os.RemoveAll(staging)
	newDir, oldDir := filepath.Join(staging, "new"), filepath.Join(staging, "old")
	for name, data := range files {
		if unitOf(name) == "" {
			return fmt.Errorf("%s is outside the generated directories %v", name, generatedUnits)
		}
		target := filepath.Join(newDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
	}
	if problems := Validate(filepath.Join(newDir, BundleDir), filepath.Join(newDir, DockerfilePath)); len(problems) > 0 {
		return fmt.Errorf("the generated bundle is invalid:\n%w", errors.Join(problemErrors(problems)...))
	}
	if problems := ValidateCatalog(filepath.Join(newDir, filepath.FromSlash(CatalogFile))); len(problems) > 0 {
		return fmt.Errorf("the generated catalog is invalid:\n%w", errors.Join(problemErrors(problems)...))
	}
	for _, unit := range generatedUnits {
		if err := swapIn(root, unit, newDir, oldDir); err != nil {
			return err
		}
	}
	return nil
}

// swapIn moves the current unit aside and the staged one into its place: two renames on the same file system.
func swapIn(root, unit, newDir, oldDir string) error {
	target := filepath.Join(root, filepath.FromSlash(unit))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("creating the parent of %s: %w", unit, err)
	}
	if _, err := os.Lstat(target); err == nil {
		aside := filepath.Join(oldDir, filepath.FromSlash(unit))
		if err := os.MkdirAll(filepath.Dir(aside), 0o755); err != nil {
			return fmt.Errorf("moving %s aside: %w", unit, err)
		}
		if err := os.Rename(target, aside); err != nil {
			return fmt.Errorf("moving %s aside: %w", unit, err)
		}
	}
	if err := os.Rename(filepath.Join(newDir, filepath.FromSlash(unit)), target); err != nil {
		return fmt.Errorf("moving the new %s into place: %w", unit, err)
	}
	return nil
}

// unitOf returns the generated unit a file belongs to, or "".
func unitOf(name string) string {
	for _, unit := range generatedUnits {
		if name == unit || strings.HasPrefix(name, unit+"/") {
			return unit
		}
	}
	return ""
}

// Diff compares generated files with what is under root: changed, missing, and extra files in the generated
// directories. An empty result means the checked-in bundle and catalog are current.
func Diff(root string, files Files) ([]string, error) {
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(files)) {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			diffs = append(diffs, name+" is missing")
		case err != nil:
			return nil, err
		case !bytes.Equal(got, files[name]):
			diffs = append(diffs, name+" differs")
		}
	}
	for _, unit := range generatedUnits {
		err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(unit)), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			if name := path.Clean(filepath.ToSlash(rel)); files[name] == nil {
				diffs = append(diffs, name+" is not generated any more")
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return diffs, nil
}

func problemErrors(problems []Problem) []error {
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errs
}
