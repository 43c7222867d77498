package apply

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

// inSync reports whether every field of desired is present in live with an equal value. Fields that only live has
// (server defaults, status, fields other managers own) are ignored. Values are compared the way the API server
// normalises them: numbers by value, quantities by amount, and an empty map or list equal to an absent one.
func inSync(desired, live any) bool {
	switch d := desired.(type) {
	case map[string]any:
		l, _ := live.(map[string]any)
		for k, dv := range d {
			lv, ok := l[k]
			if !ok {
				// The API server drops zero values of omitempty fields: "" or false or 0 desired, absent live.
				if isZero(dv) {
					continue
				}
				return false
			}
			if !inSync(dv, lv) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok {
			return len(d) == 0 && live == nil
		}
		if len(d) != len(l) {
			return false
		}
		for i := range d {
			if !inSync(d[i], l[i]) {
				return false
			}
		}
		return true
	case string:
		if l, ok := live.(string); ok {
			if l == d {
				return true
			}
			dq, err1 := resource.ParseQuantity(d)
			lq, err2 := resource.ParseQuantity(l)
			return err1 == nil && err2 == nil && dq.Cmp(lq) == 0
		}
		return false
	case nil:
		return isEmpty(live)
	default:
		if dn, ok := number(d); ok {
			ln, ok := number(live)
			return ok && dn == ln
		}
		return reflect.DeepEqual(desired, live)
	}
}

// driftedField returns the path of the first field of desired that live does not hold ("" when in sync), so that
// drift repairs can say what was changed.
func driftedField(desired, live any, path string) string {
	if inSync(desired, live) {
		return ""
	}
	switch d := desired.(type) {
	case map[string]any:
		l, _ := live.(map[string]any)
		for k, dv := range d {
			if !inSync(dv, l[k]) && !(l[k] == nil && isZero(dv)) {
				return driftedField(dv, l[k], path+"."+k)
			}
		}
	case []any:
		if l, ok := live.([]any); ok && len(l) == len(d) {
			for i := range d {
				if !inSync(d[i], l[i]) {
					return driftedField(d[i], l[i], fmt.Sprintf("%s[%d]", path, i))
				}
			}
		}
	}
	return path
}

// number returns a number's value in one notation, so that the same value compares equal whatever its Go type: an
// integer decoded from JSON or YAML is an int64, the same field converted from a typed object a float64 when its Go
// field is one (a CRD schema's maximum).
func number(v any) (string, bool) {
	switch n := v.(type) {
	case int:
		return strconv.FormatInt(int64(n), 10), true
	case int32:
		return strconv.FormatInt(int64(n), 10), true
	case int64:
		return strconv.FormatInt(n, 10), true
	case float32:
		return floatValue(float64(n)), true
	case float64:
		return floatValue(n), true
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return strconv.FormatInt(i, 10), true
		}
		if f, err := n.Float64(); err == nil {
			return floatValue(f), true
		}
		return n.String(), true
	}
	return "", false
}

// floatValue writes an integral float as the integer it is (exactly, up to 2^53), any other in Go's shortest form.
func floatValue(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func isZero(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case bool:
		return !x
	}
	if n, ok := number(v); ok {
		return n == "0"
	}
	return isEmpty(v)
}
