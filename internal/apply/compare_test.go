package apply

import (
	"encoding/json"
	"testing"
)

func TestInSyncComparesNumbersByValue(t *testing.T) {
	for _, c := range []struct {
		name          string
		desired, live any
		want          bool
	}{
		{"int64 and the same float64", int64(4294967295), float64(4294967295), true},
		{"int and int64", 65536, int64(65536), true},
		{"float64 and the same json.Number", 0.5, json.Number("0.5"), true},
		{"integral json.Number and float64", json.Number("10"), 10.0, true},
		{"a fraction is not its integer part", int64(1), 1.5, false},
		{"different integers", int64(65535), float64(65536), false},
		{"beyond 2^53 floats keep their notation", float64(1 << 60), float64(1<<60 + 1<<10), false},
		{"a number is not its string", int64(1), "1", false},
		{"numbers inside a schema", map[string]any{"maximum": int64(4294967295), "minimum": int64(0)},
			map[string]any{"maximum": float64(4294967295), "minimum": float64(0), "type": "integer"}, true},
	} {
		if got := inSync(c.desired, c.live); got != c.want {
			t.Errorf("%s: inSync(%#v, %#v) = %v, want %v", c.name, c.desired, c.live, got, c.want)
		}
	}
}
