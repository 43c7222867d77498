// Package argocd runs Argo CD resource health scripts the way Argo CD's application controller does, so the
// ServiceMesh's config/argocd/health.lua is tested in the interpreter and library set it meets in production, and
// renders the argocd-cm patch that ships that script. The operator does not import it: Argo CD runs the script,
// not Meshwright.
package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Libraries is the set of Lua libraries a script gets.
type Libraries int

const (
	// Restricted is what a script in argocd-cm gets by default: base, package and table; no string, math, io or
	// debug.
	Restricted Libraries = iota
	// Standard is every standard library, as for built-in resource_customizations scripts or argocd-cm scripts with
	// resource.customizations.useOpenLibs.<group>_<Kind>: "true".
	Standard
)

func (l Libraries) String() string {
	if l == Standard {
		return "the standard libraries"
	}
	return "the restricted libraries of argocd-cm"
}

// Health is what a health script returns; Argo CD shows both fields.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Argo CD's valid health statuses; any other value is reported as Unknown.
var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

// invalidHealthStatus is the message Argo CD shows when a script returns a status it does not know.
const invalidHealthStatus = "Lua returned an invalid health status"

// scriptTimeout is Argo CD's limit for one script run.
const scriptTimeout = time.Second

// RunHealthScript runs script with obj bound to the global `obj` and returns the health it computed. obj is the
// object as an unstructured map: integers as int64 (as the controller's informers deliver them) or float64 (as YAML
// decodes them); both become Lua numbers.
func RunHealthScript(script string, obj map[string]any, libs Libraries) (Health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: libs != Standard})
	defer l.Close()
	// Argo CD opens these three on top of whatever the options opened. It also opens a "safe" os library with only
	// clock functions; a health script has no use for the clock, so leaving os out makes this state no more lenient.
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return Health{}, fmt.Errorf("opening the Lua %q library: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return Health{}, fmt.Errorf("running the health script: %w", err)
	}
	return healthOf(l.Get(-1))
}

// healthOf reads the script's return value as Argo CD does: a table whose JSON form decodes into {status, message};
// an unknown status becomes Unknown.
func healthOf(returned lua.LValue) (Health, error) {
	table, ok := returned.(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("expect table output from Lua script, not %s", returned.Type())
	}
	fields := map[string]any{}
	var bad error
	table.ForEach(func(k, v lua.LValue) {
		key, isString := k.(lua.LString)
		if !isString {
			bad = fmt.Errorf("the returned table has a non-string key %v", k)
			return
		}
		fields[string(key)] = fromLua(v)
	})
	if bad != nil {
		return Health{}, bad
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return Health{}, fmt.Errorf("encoding the returned table: %w", err)
	}
	var h Health
	if err := json.Unmarshal(data, &h); err != nil {
		return Health{}, fmt.Errorf("decoding the returned table %s: %w", data, err)
	}
	if !validStatuses[h.Status] {
		return Health{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	return h, nil
}

// toLua converts an unstructured value into a Lua value the way Argo CD does.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case []any:
		table := l.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(toLua(l, item))
		}
		return table
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}

// fromLua converts the scalar and table values a health script returns back to Go for JSON encoding.
func fromLua(value lua.LValue) any {
	switch v := value.(type) {
	case lua.LBool:
		return bool(v)
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return float64(v)
	case *lua.LTable:
		out := map[string]any{}
		v.ForEach(func(k, item lua.LValue) { out[k.String()] = fromLua(item) })
		return out
	}
	return nil
}
