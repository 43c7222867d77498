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
