package render

import (
	"encoding/json"
	"fmt"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
	"github.com/meshwright/meshwright/internal/istio"
)

func raw(t *testing.T, v string) *apiextensionsv1.JSON {
	t.Helper()
	if !json.Valid([]byte(v)) {
		t.Fatalf("bad fixture %s", v)
	}
	return &apiextensionsv1.JSON{Raw: []byte(v)}
}

func lookup(values map[string]any, path ...string) any {
	var cur any = values
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func TestValuesPrecedence(t *testing.T) {
	base := Config{MeshName: "m", Namespace: "istio-system", Hub: "docker.io/istio",
		Version: istio.Version{Version: "1.31.0"}}
	profile := map[string]any{
		"global":     map[string]any{"hub": "profile.example/hub"},
		"meshConfig": map[string]any{"accessLogFile": "/dev/profile", "enableTracing": true},
		"pilot":      map[string]any{"replicaCount": int64(7), "traceSampling": 5.0},
	}
	cases := []struct {
		name    string
		spec    func(t *testing.T) meshv1.ServiceMeshSpec
		profile map[string]any
		path    []string
		want    any
	}{
		{"the catalog sets the image tag", nil, nil, []string{"global", "tag"}, "1.31.0"},
		{"the catalog sets the hub when nothing overrides it", nil, nil, []string{"global", "hub"}, "docker.io/istio"},
		{"the profile overrides the catalog", nil, profile, []string{"global", "hub"}, "profile.example/hub"},
		{"typed fields override the profile", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{ControlPlane: &meshv1.ControlPlane{Replicas: ptr.To[int32](3)}}
		}, profile, []string{"pilot", "replicaCount"}, int64(3)},
		{"a profile value no typed field sets survives", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{ControlPlane: &meshv1.ControlPlane{Replicas: ptr.To[int32](3)}}
		}, profile, []string{"pilot", "traceSampling"}, 5.0},
		{"spec.meshConfig overrides the profile key by key", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{MeshConfig: raw(t, `{"accessLogFile":"/dev/stdout"}`)}
		}, profile, []string{"meshConfig", "accessLogFile"}, "/dev/stdout"},
		{"spec.meshConfig keeps the profile's other keys", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{MeshConfig: raw(t, `{"accessLogFile":"/dev/stdout"}`)}
		}, profile, []string{"meshConfig", "enableTracing"}, true},
		{"spec.values override typed fields", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{ControlPlane: &meshv1.ControlPlane{Replicas: ptr.To[int32](3)},
				Values: raw(t, `{"pilot":{"replicaCount":4}}`)}
		}, profile, []string{"pilot", "replicaCount"}, float64(4)},
		{"spec.values override the catalog hub", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{Values: raw(t, `{"global":{"hub":"mirror.example/istio"}}`)}
		}, nil, []string{"global", "hub"}, "mirror.example/istio"},
		{"the operator forces the namespace over spec.values", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{Values: raw(t, `{"global":{"istioNamespace":"elsewhere"}}`)}
		}, nil, []string{"global", "istioNamespace"}, "istio-system"},
		{"the operator forces the revision over spec.values", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{Values: raw(t, `{"revision":"sneaky"}`)}
		}, nil, []string{"revision"}, ""},
		{"the log level becomes istiod's default scope", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{ControlPlane: &meshv1.ControlPlane{LogLevel: "debug"}}
		}, nil, []string{"global", "logging", "level"}, "default:debug"},
		{"autoscaling bounds reach the chart", func(t *testing.T) meshv1.ServiceMeshSpec {
			return meshv1.ServiceMeshSpec{ControlPlane: &meshv1.ControlPlane{Autoscaling: &meshv1.Autoscaling{MinReplicas: 2, MaxReplicas: 6}}}
		}, nil, []string{"pilot", "autoscaleMax"}, int64(6)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			if tc.spec != nil {
				cfg.Spec = tc.spec(t)
			}
			values, err := Values(cfg, Revision{Version: cfg.Version}, tc.profile)
			if err != nil {
				t.Fatal(err)
			}
			if got := lookup(values, tc.path...); fmt.Sprintf("%T %v", got, got) != fmt.Sprintf("%T %v", tc.want, tc.want) {
				t.Errorf("%v = %T %v, want %T %v", tc.path, got, got, tc.want, tc.want)
			}
		})
	}
}

func TestValuesDoNotModifyTheProfile(t *testing.T) {
	profile := map[string]any{"pilot": map[string]any{"replicaCount": int64(7)}}
	cfg := Config{Namespace: "istio-system", Version: istio.Version{Version: "1.31.0"},
		Spec: meshv1.ServiceMeshSpec{ControlPlane: &meshv1.ControlPlane{Replicas: ptr.To[int32](3)}}}
	if _, err := Values(cfg, Revision{Version: cfg.Version}, profile); err != nil {
		t.Fatal(err)
	}
	if got := lookup(profile, "pilot", "replicaCount"); got != int64(7) {
		t.Errorf("the profile map was modified: replicaCount %v", got)
	}
}
