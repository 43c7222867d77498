package istio

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		requested string
		now       time.Time
		want      string
		wantErr   string
	}{
		{"", now, "1.31.0", ""},
		{"latest", now, "1.31.0", ""},
		{"1.31", now, "1.31.0", ""},
		{"1.30", now, "1.30.4", ""},
		{"1.30.4", now, "1.30.4", ""},
		{"1.30.3", now, "", "is not supported"},
		{"1.29", now, "", "is not supported"},
		{"1.30", time.Date(2027, 6, 2, 0, 0, 0, 0, time.UTC), "", "is past its end of life"},
		{"latest", time.Date(2027, 6, 2, 0, 0, 0, 0, time.UTC), "1.31.0", ""},
	}
	for _, tc := range cases {
		t.Run("resolves "+tc.requested+" on "+tc.now.Format(time.DateOnly), func(t *testing.T) {
			got, err := DefaultCatalog.Resolve(tc.requested, tc.now)
			if tc.wantErr != "" {
				var unsupported *UnsupportedVersionError
				if !errors.As(err, &unsupported) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an UnsupportedVersionError saying %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "supported versions: 1.31.0") {
					t.Errorf("the error does not list the supported versions: %v", err)
				}
				return
			}
			if err != nil || got.Version != tc.want {
				t.Fatalf("got %s, %v; want %s", got.Version, err, tc.want)
			}
		})
	}
}

func TestEveryCatalogVersionHasLoadableCharts(t *testing.T) {
	for _, v := range DefaultCatalog.Versions {
		for _, name := range []string{ChartBase, ChartIstiod} {
			c, err := LoadChart(v, name)
			if err != nil {
				t.Fatalf("Istio %s chart %s: %v", v.Version, name, err)
			}
			if _, err := ProfileValues(c, "demo"); err != nil {
				t.Errorf("Istio %s chart %s: %v", v.Version, name, err)
			}
		}
	}
}

func TestLoadCatalogRejectsBrokenEntries(t *testing.T) {
	for name, doc := range map[string]string{
		"an unknown chart source": "hub: h\nimages: {pilot: p, proxy: x}\nversions:\n- {version: 1.2.3, charts: nope, endOfLife: \"2030-01-01\"}\n",
		"a version without patch": "hub: h\nimages: {pilot: p, proxy: x}\nversions:\n- {version: \"1.2\", charts: istio-1.31, endOfLife: \"2030-01-01\"}\n",
		"a bad end-of-life date":  "hub: h\nimages: {pilot: p, proxy: x}\nversions:\n- {version: 1.2.3, charts: istio-1.31, endOfLife: soon}\n",
		"no hub":                  "images: {pilot: p, proxy: x}\nversions: []\n",
	} {
		t.Run("rejects "+name, func(t *testing.T) {
			if _, err := LoadCatalog([]byte(doc)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestResolveRunningKeepsTheMinorAMeshRuns(t *testing.T) {
	supported := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	after130EOL := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	after131EOL := time.Date(2027, 10, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name, requested, running string
		now                      time.Time
		want                     string
		wantPinned, wantEOL      bool
		wantErr                  string
	}{
		{name: "an empty version on a new mesh is the newest", requested: "", now: supported, want: "1.31.0"},
		{name: "latest on a new mesh is the newest", requested: "latest", now: supported, want: "1.31.0"},
		{name: "an empty version keeps the running minor", requested: "", running: "1.30.4", now: supported,
			want: "1.30.4", wantPinned: true},
		{name: "latest keeps the running minor", requested: "latest", running: "1.30.4", now: supported,
			want: "1.30.4", wantPinned: true},
		{name: "an empty version follows the newest patch of the running minor", requested: "", running: "1.30.2",
			now: supported, want: "1.30.4", wantPinned: true},
		{name: "a minor alias moves a running mesh to that minor", requested: "1.31", running: "1.30.4", now: supported,
			want: "1.31.0"},
		{name: "an exact version behaves as it always did", requested: "1.30.4", running: "1.31.0", now: supported,
			want: "1.30.4"},
		{name: "a running minor past its end of life is kept, with a warning", requested: "1.30", running: "1.30.4",
			now: after130EOL, want: "1.30.4", wantEOL: true},
		{name: "an empty version keeps a running minor past its end of life", requested: "", running: "1.30.4",
			now: after130EOL, want: "1.30.4", wantPinned: true, wantEOL: true},
		{name: "a new mesh asking for a version past its end of life is refused", requested: "1.30", now: after130EOL,
			wantErr: `spec.version "1.30" is past its end of life`},
		{name: "moving a running mesh to a minor past its end of life is refused", requested: "1.30", running: "1.31.0",
			now: after130EOL, wantErr: "is past its end of life"},
		{name: "a new mesh with every version past its end of life is refused", requested: "", now: after131EOL,
			wantErr: "is past its end of life"},
		{name: "a running minor this build does not embed is not replaced by another", requested: "", running: "1.29.3",
			now: supported, wantErr: "keeps the Istio minor the mesh runs (1.29.3)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DefaultCatalog.ResolveRunning(tc.requested, tc.running, tc.now)
			if tc.wantErr != "" {
				var unsupported *UnsupportedVersionError
				if !errors.As(err, &unsupported) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want an UnsupportedVersionError saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.Version.Version != tc.want || got.Pinned != tc.wantPinned || got.PastEndOfLife != tc.wantEOL {
				t.Fatalf("got %s pinned=%v pastEndOfLife=%v, %v; want %s pinned=%v pastEndOfLife=%v",
					got.Version.Version, got.Pinned, got.PastEndOfLife, err, tc.want, tc.wantPinned, tc.wantEOL)
			}
		})
	}
}

func TestLookupFindsAVersionPastItsEndOfLife(t *testing.T) {
	if v, ok := DefaultCatalog.Lookup("1.30.4"); !ok || v.Charts != "istio-1.30" {
		t.Errorf("Lookup(1.30.4) = %+v, %v", v, ok)
	}
	if _, ok := DefaultCatalog.Lookup("1.30"); ok {
		t.Error("Lookup accepted a minor alias; it takes exact versions only")
	}
}

func TestCompareVersionsIsSemantic(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.30.4", "1.31.0", -1}, {"1.31.0", "1.30.4", 1}, {"1.9.0", "1.10.0", -1}, {"1.30.4", "1.30.4", 0}, {"", "1.30.4", -1},
	} {
		t.Run(tc.a+" against "+tc.b, func(t *testing.T) {
			if got := CompareVersions(tc.a, tc.b); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}
