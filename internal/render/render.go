// Package render turns a resolved ServiceMesh configuration into the Kubernetes objects of its control plane. It is
// pure: one immutable Config in, sorted objects out; no client, no clock, no randomness. Istio's charts are rendered
// client-side with the Helm engine (no Helm releases). Objects carry Meshwright's ownership labels; deciding what to
// apply, prune or leave to istiod is the apply package's job, not this one's.
package render

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/version"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
)

// Labels every rendered object carries. The owner label ties an object to its ServiceMesh; prune and delete only
// ever touch objects that still carry it.
const (
	LabelOwner     = "mesh.meshwright.dev/owner"
	LabelComponent = "mesh.meshwright.dev/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "meshwright"
)

// Component names: the value of LabelComponent, and the name of the component's entry in status.
const (
	ComponentBase    = "base"
	ComponentIstiod  = "istiod"
	ComponentGateway = "gateway"
	ComponentCNI     = "cni"
	ComponentZtunnel = "ztunnel"
	// ComponentGatewayAPI is the Gateway API's CRDs (spec.gatewayAPI.installCRDs).
	ComponentGatewayAPI = "gateway-api"
)

// Config is everything a render depends on. The same Config always renders the same objects.
type Config struct {
	// MeshName is the ServiceMesh's name.
	MeshName string
	// Namespace of the control plane.
	Namespace string
	// Hub is the image registry of the resolved version.
	Hub string
	// Version is the resolved Istio version: the base chart (CRDs) and cert-manager objects come from it.
	Version istio.Version
	// Revisions are the istiod control planes to render. Empty means one default revision (InPlace) of Version.
	Revisions []Revision
	// DefaultRevision is the revision the base chart's default validator serves: "" for InPlace (istiod), or the
	// revision the "default" tag points to.
	DefaultRevision string
	// KubeVersion is the cluster's version, as templates see it in .Capabilities.
	KubeVersion string
	// Spec is the user's spec; only its typed fields, meshConfig and values are read.
	Spec meshv1.ServiceMeshSpec
	// CARoot is the fingerprint of the root in the Secret cacerts with a cert-manager CA ("" before it is issued): it
	// becomes istiod's AnnotationCARoot, so that a new root restarts istiod.
	CARoot string
	// Owner, when set, becomes the controller owner reference of every object except CRDs and the Namespace,
	// which must outlive the mesh unless its deletion policy says otherwise.
	Owner *metav1.OwnerReference
}

// Revision is one istiod control plane.
type Revision struct {
	// Name of the revision; "" for the default revision of InPlace.
	Name string
	// Version of Istio the revision runs.
	Version istio.Version
	// Tags are the revision tags pointing at this revision ("default" included when it does).
	Tags []string
}

// LabelRevision names the istiod revision an object belongs to ("default" for InPlace).
const LabelRevision = "mesh.meshwright.dev/revision"

// RevisionLabelValue is the value of LabelRevision for a revision name.
func RevisionLabelValue(name string) string { return cmp.Or(name, "default") }

func (c Config) revisions() []Revision {
	if len(c.Revisions) == 0 {
		return []Revision{{Version: c.Version}}
	}
	return c.Revisions
}

// Hash identifies a Config; equal hashes render equal objects.
func (c Config) Hash() string {
	raw, _ := json.Marshal(c) // Config holds only JSON-safe values
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Render returns the objects of every component of the mesh, row by row of Components, labelled and sorted in apply
// order.
func Render(cfg Config) ([]*unstructured.Unstructured, error) {
	// The components render at the same time (each renders its own charts; Istio's CRDs in the base row are most of
	// the CPU), and their objects are then taken in the table's order.
	outs := make([][]*unstructured.Unstructured, len(Components))
	errs := make([]error, len(Components))
	var wg sync.WaitGroup
	for i, c := range Components {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = c.Render(cfg)
		}()
	}
	wg.Wait()
	var objs []*unstructured.Unstructured
	seenNamespaces := map[string]bool{}
	for i, c := range Components {
		out, err := outs[i], errs[i]
		if err != nil {
			return nil, fmt.Errorf("rendering %s: %w", c.Name, err)
		}
		for _, o := range out {
			if o.GetKind() == "Namespace" && o.GetAPIVersion() == "v1" {
				if seenNamespaces[o.GetName()] {
					continue // two gateways in one namespace, or CNI beside the control plane
				}
				seenNamespaces[o.GetName()] = true
			}
			if o.GetLabels()[LabelComponent] == "" {
				label(o, cfg.MeshName, c.Name)
			}
			objs = append(objs, o)
		}
	}
	setOwner(objs, cfg.Owner)
	Sort(objs)
	return objs, nil
}

func renderBase(cfg Config) ([]*unstructured.Unstructured, error) {
	base, err := renderChart(cfg, Revision{Version: cfg.Version}, istio.ChartBase, "base")
	if err != nil {
		return nil, err
	}
	return append([]*unstructured.Unstructured{namespace(cfg.Namespace)}, base...), nil
}

func renderIstiod(cfg Config) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, rev := range cfg.revisions() {
		out, err := renderChart(cfg, rev, istio.ChartIstiod, "istiod")
		if err != nil {
			return nil, fmt.Errorf("revision %s: %w", RevisionLabelValue(rev.Name), err)
		}
		for _, o := range out {
			label(o, cfg.MeshName, ComponentIstiod)
			l := o.GetLabels()
			l[LabelRevision] = RevisionLabelValue(rev.Name)
			o.SetLabels(l)
		}
		objs = append(objs, out...)
	}
	return objs, nil
}

func namespace(name string) *unstructured.Unstructured {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	return ns
}

func renderChart(cfg Config, rev Revision, chartName, release string) ([]*unstructured.Unstructured, error) {
	chrt, err := istio.LoadChart(rev.Version, chartName)
	if err != nil {
		return nil, err
	}
	profile, err := istio.ProfileValues(chrt, cfg.Spec.Profile)
	if err != nil {
		return nil, err
	}
	values, err := Values(cfg, rev, profile)
	if err != nil {
		return nil, err
	}
	return renderWithValues(cfg, chrt, values, release, cfg.Namespace)
}

// renderWithValues renders a loaded chart client-side as release in namespace.
func renderWithValues(cfg Config, chrt *chart.Chart, values map[string]any, release, namespace string) ([]*unstructured.Unstructured, error) {
	return renderPlanned(cfg, chrt, withCRDPlan(chrt), values, release, namespace)
}

// renderPlanned renders chrt through plan, its copy with crdPlanTemplate (see crds.go), or through chrt itself when
// plan is nil.
func renderPlanned(cfg Config, chrt, plan *chart.Chart, values map[string]any, release, namespace string) ([]*unstructured.Unstructured, error) {
	caps := chartutil.DefaultCapabilities.Copy()
	if kv, err := version.ParseGeneric(cmp.Or(cfg.KubeVersion, "v1.37.0")); err == nil {
		caps.KubeVersion = chartutil.KubeVersion{
			Version: "v" + kv.String(), Major: fmt.Sprint(kv.Major()), Minor: fmt.Sprint(kv.Minor()),
		}
	}
	renderValues, err := chartutil.ToRenderValues(chrt, values,
		chartutil.ReleaseOptions{Name: release, Namespace: namespace, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return nil, err
	}
	// Istio's templates label objects with the release service; they are Meshwright's, not Helm's.
	if rel, ok := renderValues["Release"].(map[string]any); ok {
		rel["Service"] = ManagedBy
	}
	rendered := chrt
	if plan != nil {
		rendered = plan
	}
	files, err := engine.Render(rendered, renderValues)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var objs []*unstructured.Unstructured
	for _, name := range names {
		if path.Ext(name) != ".yaml" && path.Ext(name) != ".yml" {
			continue // NOTES.txt, helpers
		}
		if plan != nil && name == chrt.Name()+"/"+crdTemplate {
			crds, err := crdsFromPlan(chrt, files[name])
			if err != nil {
				return nil, err
			}
			objs = append(objs, crds...)
			continue
		}
		docs, err := decode(files[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		objs = append(objs, docs...)
	}
	return objs, nil
}

func decode(manifest string) ([]*unstructured.Unstructured, error) {
	docs, err := splitDocuments(manifest)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, doc := range docs {
		u, err := decodeDocument(doc)
		if err != nil {
			return nil, err
		}
		if u != nil {
			out = append(out, u)
		}
	}
	return out, nil
}

// decodeCRDs decodes a CRD file (decodeCRDDocument) with the documents spread over up to workers goroutines: Istio's
// CRDs are most of what a render decodes.
func decodeCRDs(manifest string, workers int) ([]*unstructured.Unstructured, error) {
	docs, err := splitDocuments(manifest)
	if err != nil {
		return nil, err
	}
	// Largest first, so that no CPU is left with the largest document at the end.
	order := make([]int, len(docs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(docs[b]), len(docs[a])) })
	objs := make([]*unstructured.Unstructured, len(docs))
	errs := make([]error, len(docs))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range max(1, min(workers, len(docs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := int(next.Add(1) - 1); n < len(docs); n = int(next.Add(1) - 1) {
				i := order[n]
				objs[i], errs[i] = decodeCRDDocument(docs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(objs, func(u *unstructured.Unstructured) bool { return u == nil }), nil
}

// splitDocuments returns the non-empty YAML documents of a manifest.
func splitDocuments(manifest string) ([][]byte, error) {
	var docs [][]byte
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
}

// decodeDocument decodes one YAML document; nil for a document of only comments.
func decodeDocument(doc []byte) (*unstructured.Unstructured, error) {
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return u, nil
}

func label(o *unstructured.Unstructured, mesh, component string) {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[LabelOwner] = mesh
	l[LabelComponent] = component
	l[LabelManagedBy] = ManagedBy
	o.SetLabels(l)
}

// CatalogCRDNames returns the names of every CustomResourceDefinition that some version of the catalog renders with
// some profile, the Gateway API's included, sorted: the only CRDs the operator may update or delete.
func CatalogCRDNames(c *istio.Catalog) ([]string, error) {
	seen := map[string]bool{}
	for _, v := range c.Versions {
		for _, profile := range meshv1.Profiles {
			objs, err := Render(Config{MeshName: "m", Namespace: "istio-system", Hub: c.Hub, Version: v,
				Spec: meshv1.ServiceMeshSpec{Profile: profile, GatewayAPI: &meshv1.GatewayAPI{InstallCRDs: true}}})
			if err != nil {
				return nil, fmt.Errorf("rendering Istio %s with profile %s: %w", v.Version, profile, err)
			}
			for _, o := range objs {
				if o.GetKind() == "CustomResourceDefinition" {
					seen[o.GetName()] = true
				}
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}
