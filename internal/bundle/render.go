package bundle

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifestsKustomization is what the bundle is made from: config/default (CRD, RBAC, manager, metrics Service)
// plus config/samples, kubebuilder's layout.
const manifestsKustomization = "config/manifests"

// managerImageName is the placeholder image name config/manager's kustomization rewrites, the one `make deploy`
// sets with `kustomize edit set image controller=$(IMG)`.
const managerImageName = "controller"

// renderConfig builds config/manifests with the operator image set, as `make deploy` would, but on an in-memory
// copy of config/ so the checked-in kustomization is never edited.
func renderConfig(root, image string) ([]*unstructured.Unstructured, error) {
	memFS := filesys.MakeFsInMemory()
	if err := copyTree(memFS, filepath.Join(root, "config"), "/config"); err != nil {
		return nil, err
	}
	if err := setManagerImage(memFS, "/config/manager/kustomization.yaml", image); err != nil {
		return nil, err
	}
	// config/manifests lists the sample files of config/samples one by one (config/samples' own kustomization holds
	// only the one sample a cluster should run), so files outside its root must load.
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone
	resources, err := krusty.MakeKustomizer(opts).Run(memFS, "/"+manifestsKustomization)
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", manifestsKustomization, err)
	}
	objects := make([]*unstructured.Unstructured, 0, resources.Size())
	for _, r := range resources.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("serialising %s: %w", r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", r.CurId(), err)
		}
		objects = append(objects, u)
	}
	return objects, nil
}

func copyTree(dst filesys.FileSystem, from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		target := path.Join(to, filepath.ToSlash(rel))
		if d.IsDir() {
			return dst.MkdirAll(target)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return dst.WriteFile(target, data)
	})
}

func setManagerImage(memFS filesys.FileSystem, kustomization, image string) error {
	data, err := memFS.ReadFile(kustomization)
	if err != nil {
		return fmt.Errorf("reading %s: %w", kustomization, err)
	}
	var k types.Kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return fmt.Errorf("decoding %s: %w", kustomization, err)
	}
	name, tag, digest := splitImage(image)
	found := false
	for i := range k.Images {
		if k.Images[i].Name == managerImageName {
			k.Images[i] = types.Image{Name: managerImageName, NewName: name, NewTag: tag, Digest: digest}
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%s has no images entry named %q to set the operator image on", kustomization, managerImageName)
	}
	if data, err = yaml.Marshal(k); err != nil {
		return fmt.Errorf("encoding %s: %w", kustomization, err)
	}
	return memFS.WriteFile(kustomization, data)
}

// splitImage splits "host/repo:tag" or "host/repo@sha256:..." into name, tag and digest; a colon before the last
// slash belongs to a registry port.
func splitImage(image string) (name, tag, digest string) {
	if at := strings.Index(image, "@"); at >= 0 {
		return image[:at], "", image[at+1:]
	}
	if colon := strings.LastIndex(image, ":"); colon > strings.LastIndex(image, "/") {
		return image[:colon], image[colon+1:], ""
	}
	return image, "", ""
}
