package grafana

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden dashboards under testdata/")

const testDatasourceUID = "meshwright-prometheus"

// scenarios are the option sets rendered to goldens; every other test runs over all of them too.
var scenarios = []struct {
	name string
	opts Options
}{
	{name: "sidecar", opts: Options{DatasourceUID: testDatasourceUID}},
	{name: "ambient", opts: Options{Ambient: true, DatasourceUID: testDatasourceUID}},
}

// renderedDashboard is the part of Grafana's dashboard JSON the tests inspect, decoded independently of the SDK.
type renderedDashboard struct {
	UID        string          `json:"uid"`
	Title      string          `json:"title"`
	Panels     []renderedPanel `json:"panels"`
	Templating struct {
		List []renderedVariable `json:"list"`
	} `json:"templating"`
}

type renderedPanel struct {
	ID         int                 `json:"id"`
	Type       string              `json:"type"`
	Title      string              `json:"title"`
	Datasource *renderedDatasource `json:"datasource"`
	Targets    []struct {
		Datasource *renderedDatasource `json:"datasource"`
		Expr       string              `json:"expr"`
		RefID      string              `json:"refId"`
	} `json:"targets"`
	Panels []renderedPanel `json:"panels"`
}

type renderedVariable struct {
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Query      string              `json:"query"`
	Datasource *renderedDatasource `json:"datasource"`
}

type renderedDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dataPanels flattens rows into the panels that run queries.
func (d renderedDashboard) dataPanels() []renderedPanel {
	var out []renderedPanel
	for _, p := range d.Panels {
		if p.Type == "row" {
			out = append(out, p.Panels...)
			continue
		}
		out = append(out, p)
	}
	return out
}

func renderScenario(t *testing.T, opts Options) map[string]renderedDashboard {
	t.Helper()
	files, err := Dashboards(opts)
	if err != nil {
		t.Fatalf("Dashboards(%+v): %v", opts, err)
	}
	decoded := make(map[string]renderedDashboard, len(files))
	for name, data := range files {
		var d renderedDashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s is not valid JSON: %v", name, err)
		}
		decoded[name] = d
	}
	return decoded
}

func TestDashboardsMatchTheirGoldenFiles(t *testing.T) {
	for _, sc := range scenarios {
		t.Run("the "+sc.name+" dashboards match testdata/"+sc.name, func(t *testing.T) {
			files, err := Dashboards(sc.opts)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join("testdata", sc.name)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for name, data := range files {
					if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			onDisk, err := filepath.Glob(filepath.Join(dir, "*.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(onDisk) != len(files) {
				t.Errorf("testdata/%s holds %d dashboards, Dashboards rendered %d; run go test -update", sc.name, len(onDisk), len(files))
			}
			for name, data := range files {
				want, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatalf("reading golden %s (run go test -update): %v", name, err)
				}
				if !bytes.Equal(data, want) {
					t.Errorf("%s differs from testdata/%s/%s; run go test -update and review the diff", name, sc.name, name)
				}
			}
		})
	}
}

func TestDashboardsAreDeterministic(t *testing.T) {
	for _, sc := range scenarios {
		t.Run("rendering the "+sc.name+" dashboards twice gives the same bytes", func(t *testing.T) {
			first, err := Dashboards(sc.opts)
			if err != nil {
				t.Fatal(err)
			}
			second, err := Dashboards(sc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(first) != len(second) {
				t.Fatalf("rendered %d then %d dashboards", len(first), len(second))
			}
			for name, data := range first {
				if !bytes.Equal(data, second[name]) {
					t.Errorf("%s changed between two renders", name)
				}
			}
		})
	}
}

func TestDashboardSetFollowsTheDataPlaneMode(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{
			name: "a sidecar mesh gets the mesh, service, workload and istiod dashboards",
			opts: Options{DatasourceUID: testDatasourceUID},
			want: []string{ControlPlaneFile, MeshFile, ServiceFile, WorkloadFile},
		},
		{
			name: "an ambient mesh also gets the ztunnel dashboard",
			opts: Options{Ambient: true, DatasourceUID: testDatasourceUID},
			want: []string{ControlPlaneFile, MeshFile, ServiceFile, WorkloadFile, ZtunnelFile},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Dashboards(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for name := range files {
				got = append(got, name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("dashboards = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDashboardsRequireADatasource(t *testing.T) {
	t.Run("an empty datasource UID is refused", func(t *testing.T) {
		if _, err := Dashboards(Options{Ambient: true}); err == nil {
			t.Error("Dashboards rendered without a datasource UID")
		}
	})
}

func TestDashboardsHaveUniqueIdentities(t *testing.T) {
	for _, sc := range scenarios {
		t.Run("every "+sc.name+" dashboard has its own non-empty uid and title", func(t *testing.T) {
			uids := map[string]string{}
			titles := map[string]string{}
			for name, d := range renderScenario(t, sc.opts) {
				if d.UID == "" || d.Title == "" {
					t.Errorf("%s: uid %q, title %q", name, d.UID, d.Title)
				}
				if len(d.UID) > 40 {
					t.Errorf("%s: uid %q is longer than Grafana's 40 characters", name, d.UID)
				}
				if other, ok := uids[d.UID]; ok {
					t.Errorf("%s and %s share uid %q", name, other, d.UID)
				}
				if other, ok := titles[d.Title]; ok {
					t.Errorf("%s and %s share title %q", name, other, d.Title)
				}
				uids[d.UID], titles[d.Title] = name, name
			}
		})
	}
}

func TestEveryQueryUsesTheProvisionedDatasource(t *testing.T) {
	for _, sc := range scenarios {
		t.Run("every "+sc.name+" panel, target and variable queries datasource "+testDatasourceUID, func(t *testing.T) {
			for name, d := range renderScenario(t, sc.opts) {
				panels := d.dataPanels()
				if len(panels) < 6 || len(panels) > 10 {
					t.Errorf("%s has %d panels, want a modest 6 to 10", name, len(panels))
				}
				ids := map[int]bool{}
				for _, p := range panels {
					if ids[p.ID] {
						t.Errorf("%s: panel id %d is used twice", name, p.ID)
					}
					ids[p.ID] = true
					checkDatasource(t, name+" panel "+p.Title, p.Datasource)
					if len(p.Targets) == 0 {
						t.Errorf("%s: panel %q has no query", name, p.Title)
					}
					for _, target := range p.Targets {
						checkDatasource(t, name+" panel "+p.Title+" target "+target.RefID, target.Datasource)
					}
				}
				for _, v := range d.Templating.List {
					checkDatasource(t, name+" variable "+v.Name, v.Datasource)
				}
			}
		})
	}
}

func checkDatasource(t *testing.T, where string, ds *renderedDatasource) {
	t.Helper()
	if ds == nil || ds.UID != testDatasourceUID || ds.Type != "prometheus" {
		t.Errorf("%s: datasource %+v, want prometheus %q", where, ds, testDatasourceUID)
	}
}
