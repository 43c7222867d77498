package render

import (
	"encoding/json"
	"reflect"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
)

// fuzzSpec builds a spec from fuzzer input: raw JSON for spec.values and spec.meshConfig (as the API server would
// hand them over: any JSON object), a profile, and a replica count.
func fuzzSpec(values, meshConfig []byte, profile uint8, replicas int32) meshv1.ServiceMeshSpec {
	spec := meshv1.ServiceMeshSpec{Profile: meshv1.Profiles[int(profile)%len(meshv1.Profiles)]}
	if json.Valid(values) {
		spec.Values = &apiextensionsv1.JSON{Raw: values}
	}
	if json.Valid(meshConfig) {
		spec.MeshConfig = &apiextensionsv1.JSON{Raw: meshConfig}
	}
	if replicas > 0 {
		spec.ControlPlane = &meshv1.ControlPlane{Replicas: ptr.To(replicas % 10)}
	}
	return spec
}

func fuzzSeeds(f *testing.F) {
	for _, seed := range []struct {
		values, meshConfig string
		profile            uint8
		replicas           int32
	}{
		{`{}`, `{}`, 0, 0},
		{`{"pilot":{"replicaCount":3}}`, `{"accessLogFile":"/dev/stdout"}`, 0, 2},
		{`{"global":{"istioNamespace":"elsewhere","hub":"x"}}`, `{}`, 1, 0},
		{`{"revision":"mine","global":null}`, `null`, 2, 1},
		{`{"pilot":[1,2,3]}`, `{"defaultConfig":{"holdApplicationUntilProxyStarts":true}}`, 3, 0},
		{`{"pilot":{"env":{"A":"1"}},"meshConfig":{"trustDomain":"t"}}`, `[]`, 5, 4},
		{`[]`, `"text"`, 6, 0},
		{`{"global":{"proxy":{"resources":{"requests":{"cpu":"x"}}}}}`, `{}`, 4, 0},
		{`{"pilot":{"image":{"nested":1}}}`, `{"rootNamespace":5}`, 0, 0},
	} {
		f.Add([]byte(seed.values), []byte(seed.meshConfig), seed.profile, seed.replicas)
	}
}

// Values merging never panics, and whatever the user writes, the forced layer wins: the namespace and revision are
// the operator's.
func FuzzValues(f *testing.F) {
	fuzzSeeds(f)
	v := istio.DefaultCatalog.Versions[0]
	f.Fuzz(func(t *testing.T, values, meshConfig []byte, profile uint8, replicas int32) {
		cfg := Config{MeshName: "m", Namespace: "istio-system", Hub: "hub", Version: v,
			Spec: fuzzSpec(values, meshConfig, profile, replicas)}
		rev := Revision{Name: "rev", Version: v}
		out, err := Values(cfg, rev, map[string]any{"pilot": map[string]any{"replicaCount": int64(1)}})
		if err != nil {
			return // a value that is not a JSON object is refused with an error, not a panic
		}
		if got := out["revision"]; got != "rev" {
			t.Errorf("revision %v, want the forced rev", got)
		}
		global, ok := out["global"].(map[string]any)
		if !ok || global["istioNamespace"] != "istio-system" {
			t.Errorf("global.istioNamespace %v, want the forced istio-system", out["global"])
		}
		if _, err := json.Marshal(out); err != nil {
			t.Errorf("values cannot be serialised: %v", err)
		}
	})
}

// Rendering never panics, and is deterministic: the same input renders the same objects, all labelled as
// Meshwright's, whatever spec.values holds.
func FuzzRender(f *testing.F) {
	fuzzSeeds(f)
	v := istio.DefaultCatalog.Versions[0]
	f.Fuzz(func(t *testing.T, values, meshConfig []byte, profile uint8, replicas int32) {
		cfg := Config{MeshName: "m", Namespace: "istio-system", Hub: "hub", Version: v,
			Spec: fuzzSpec(values, meshConfig, profile, replicas)}
		first, err := Render(cfg)
		if err != nil {
			return // refused input is reported as an error (the mesh stalls), never a panic
		}
		second, err := Render(cfg)
		if err != nil {
			t.Fatalf("the second render of the same input failed: %v", err)
		}
		if len(first) != len(second) {
			t.Fatalf("renders of the same input differ: %d and %d objects", len(first), len(second))
		}
		for i := range first {
			if !reflect.DeepEqual(first[i].Object, second[i].Object) {
				t.Fatalf("renders of the same input differ at %s", first[i].GetKind()+" "+first[i].GetName())
			}
			if first[i].GetKind() == "" || first[i].GetName() == "" {
				t.Fatalf("object %d has no kind or name", i)
			}
			if first[i].GetLabels()[LabelOwner] != "m" {
				t.Errorf("%s lacks the owner label", first[i].GetKind()+" "+first[i].GetName())
			}
		}
	})
}
