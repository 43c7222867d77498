package argocd

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// The restricted state must really lack the libraries argocd-cm withholds, or running the script in it proves nothing.
func TestRestrictedLibrariesAreThoseOfArgoCDConfigMap(t *testing.T) {
	cases := []struct {
		name, script string
	}{
		{"string functions", `return { status = string.upper("healthy") }`},
		{"string methods", `local s = "healthy"; return { status = s:upper() }`},
		{"math functions", `return { status = "Healthy", message = "" .. math.floor(1.5) }`},
		{"io", `local _ = io.type(1); return { status = "Healthy" }`},
	}
	for _, tc := range cases {
		t.Run(tc.name+" fail in argocd-cm's restricted state and work with the standard libraries", func(t *testing.T) {
			if _, err := RunHealthScript(tc.script, map[string]any{}, Restricted); err == nil {
				t.Error("the script ran in the restricted state")
			}
			if _, err := RunHealthScript(tc.script, map[string]any{}, Standard); err != nil {
				t.Errorf("with the standard libraries: %v", err)
			}
		})
	}
	t.Run("base and table functions work in the restricted state", func(t *testing.T) {
		script := `local t = {}; table.insert(t, tostring(#obj.items)); for _, v in ipairs(obj.items) do t[#t+1] = type(v) end
return { status = "Healthy", message = table.concat(t, ",") }`
		got, err := RunHealthScript(script, map[string]any{"items": []any{"a", int64(1)}}, Restricted)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Health{Status: "Healthy", Message: "2,string,number"}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}

func TestReturnValuesAreReadAsArgoCDReadsThem(t *testing.T) {
	cases := []struct {
		name, script string
		want         Health
		wantErr      bool
	}{
		{"a status Argo CD does not know becomes Unknown", `return { status = "Fine" }`,
			Health{Status: "Unknown", Message: invalidHealthStatus}, false},
		{"a missing message is empty", `return { status = "Healthy" }`, Health{Status: "Healthy"}, false},
		{"a value that is not a table is an error", `return "Healthy"`, Health{}, true},
		{"a numeric status is an error", `return { status = 1 }`, Health{}, true},
		{"a script that never ends is stopped", `while true do end`, Health{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RunHealthScript(tc.script, map[string]any{}, Restricted)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Branches the captured objects cannot reach (no operator run produces them), built by hand. The captured objects in
// config/argocd/testdata cover every state the operator does produce.
func TestHealthScriptEdgeCases(t *testing.T) {
	script := readScript(t)
	cases := []struct {
		name, object string
		want         Health
	}{
		{"a status without conditions is waiting for the first reconcile",
			`{"metadata":{"generation":1},"status":{"observedGeneration":1}}`,
			Health{"Progressing", "Waiting for Meshwright to reconcile the ServiceMesh"}},
		{"observedGeneration 0 is waiting for the first reconcile",
			`{"metadata":{"generation":1},"status":{"observedGeneration":0,"conditions":[{"type":"Ready","status":"True","message":"x"}]}}`,
			Health{"Progressing", "Waiting for Meshwright to reconcile the ServiceMesh"}},
		{"an empty conditions list is waiting for the first reconcile",
			`{"metadata":{"generation":1},"status":{"observedGeneration":1,"conditions":[]}}`,
			Health{"Progressing", "Waiting for Meshwright to reconcile the ServiceMesh"}},
		{"large generations are compared and printed as integers",
			`{"metadata":{"generation":123456789},"status":{"observedGeneration":123456788,"conditions":[{"type":"Ready","status":"True"}]}}`,
			Health{"Progressing", "Waiting for Meshwright to reconcile generation 123456789 (status is from generation 123456788)"}},
		{"Ready Unknown without Reconciling or Stalled is progressing with Ready's message",
			`{"metadata":{"generation":2},"status":{"observedGeneration":2,"conditions":[{"type":"Ready","status":"Unknown","message":"checking"}]}}`,
			Health{"Progressing", "Not ready: checking"}},
		{"no Ready condition is progressing",
			`{"metadata":{"generation":2},"status":{"observedGeneration":2,"conditions":[{"type":"ControlPlaneReady","status":"True"}]}}`,
			Health{"Progressing", "Waiting for the Ready condition"}},
		{"Stalled without a message says Stalled",
			`{"metadata":{"generation":2},"status":{"observedGeneration":2,"conditions":[{"type":"Stalled","status":"True"},{"type":"Ready","status":"False"}]}}`,
			Health{"Degraded", "Stalled"}},
		{"Reconciling wins over Stalled, as in kstatus",
			`{"metadata":{"generation":2},"status":{"observedGeneration":2,"conditions":[{"type":"Stalled","status":"True","message":"s"},{"type":"Reconciling","status":"True","message":"r"}]}}`,
			Health{"Progressing", "Reconciling: r"}},
		{"a deletion wins over everything",
			`{"metadata":{"generation":2,"deletionTimestamp":"2026-01-01T00:00:00Z"},"status":{"observedGeneration":2,"conditions":[{"type":"Stalled","status":"True","message":"s"}]}}`,
			Health{"Progressing", "Deleting"}},
		{"an object without metadata or status does not break the script", `{}`,
			Health{"Progressing", "Waiting for Meshwright to reconcile the ServiceMesh"}},
	}
	for _, tc := range cases {
		for _, libs := range []Libraries{Standard, Restricted} {
			for _, d := range decodings {
				t.Run(tc.name+" with "+libs.String()+", numbers "+d.name, func(t *testing.T) {
					obj, err := d.decode([]byte(tc.object))
					if err != nil {
						t.Fatal(err)
					}
					got, err := RunHealthScript(script, obj, libs)
					if err != nil {
						t.Fatal(err)
					}
					if got != tc.want {
						t.Errorf("got %+v, want %+v", got, tc.want)
					}
				})
			}
		}
	}
}

// Running the captured cases in the restricted state only proves the branches they reach; this proves the rest of
// the script calls no library argocd-cm withholds.
func TestHealthScriptCallsNoWithheldLibrary(t *testing.T) {
	code, err := codeOnly(readScript(t))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\b(string|math|io|os|debug|coroutine|channel)\s*\.`).FindString(code); m != "" {
		t.Errorf("health.lua uses %q, which argocd-cm does not provide", m)
	}
	if strings.Contains(code, ":") {
		t.Error("health.lua calls a method with `:`; string methods need the string library, which argocd-cm does not provide")
	}
}

// codeOnly returns the Lua source with comments and quoted strings blanked out. Long brackets ([[...]]) are rejected
// rather than parsed: the script does not need them.
func codeOnly(src string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		switch {
		case strings.HasPrefix(src[i:], "[["), strings.HasPrefix(src[i:], "--[["):
			return "", errLongBracket
		case strings.HasPrefix(src[i:], "--"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case src[i] == '"' || src[i] == '\'':
			quote := src[i]
			for i++; i < len(src) && src[i] != quote; i++ {
				if src[i] == '\\' {
					i++
				}
			}
			b.WriteString(`""`)
		default:
			b.WriteByte(src[i])
		}
	}
	return b.String(), nil
}

var errLongBracket = errors.New("health.lua uses a long bracket ([[ ]]); keep to quoted strings so the library check can read it")
