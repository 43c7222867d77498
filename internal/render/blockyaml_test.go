package render

import (
	"errors"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/meshwright/meshwright/internal/istio"
)

// Every CRD file of the catalog decodes the fast way, without falling back to go-yaml, into exactly the objects go-yaml
// makes of it: these files are the only input decodeCRDDocument has, and they are built into the binary.
func TestBlockYAMLDecodesEveryCatalogCRDFileAsGoYAMLDoes(t *testing.T) {
	for _, v := range istio.DefaultCatalog.Versions {
		chrt, err := istio.LoadChart(v, istio.ChartBase)
		if err != nil {
			t.Fatal(err)
		}
		file := crdFileOf(chrt)
		if file == nil {
			t.Fatalf("Istio %s: the base chart has no %s", v.Version, crdFile)
		}
		docs, err := splitDocuments(string(file.Data))
		if err != nil {
			t.Fatal(err)
		}
		decoded := 0
		for i, doc := range docs {
			fast, err := decodeBlockYAML(doc)
			if err != nil {
				t.Errorf("Istio %s, document %d: %v; decodeBlockYAML must read every CRD of the catalog (extend it, or "+
					"the CRDs of this version decode slowly)", v.Version, i, err)
				continue
			}
			slow, err := decodeDocument(doc)
			if err != nil {
				t.Fatal(err)
			}
			if slow == nil {
				if fast != nil {
					t.Errorf("Istio %s, document %d: go-yaml decodes nothing, decodeBlockYAML %v", v.Version, i, fast)
				}
				continue
			}
			if !reflect.DeepEqual(fast, slow.Object) {
				t.Errorf("Istio %s, document %d (%s): decodeBlockYAML and go-yaml differ at %s", v.Version, i, slow.GetName(),
					firstDifference(fast, slow.Object, ""))
				continue
			}
			decoded++
		}
		if decoded < 10 {
			t.Errorf("Istio %s: only %d CRDs compared", v.Version, decoded)
		}
	}
}

// firstDifference names the first path at which a and b differ (in value or Go type).
func firstDifference(a, b any, path string) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return path + " (keys)"
		}
		for k := range x {
			if !reflect.DeepEqual(x[k], y[k]) {
				return firstDifference(x[k], y[k], path+"."+k)
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return path + " (items)"
		}
		for i := range x {
			if !reflect.DeepEqual(x[i], y[i]) {
				return firstDifference(x[i], y[i], path+"["+string(rune('0'+i%10))+"]")
			}
		}
	}
	return path
}

// Snippets of what decodeBlockYAML must leave to go-yaml, and of what it must read as go-yaml does.
func TestBlockYAMLReadsOnlyWhatItIsSureOf(t *testing.T) {
	leftToGoYAML := []string{
		"a: yes\n", "a: on\n", "a: Y\n", "a: NULL\n", "a: ~\n", "a: 1.5\n", "a: 012\n", "a: 0x1f\n", "a: 1e3\n",
		"a: .inf\n", "a: 2001-12-14\n", "a: 1:20\n", "a: &x b\n", "a: *x\n", "a: !!str 1\n", "a: [b, c]\n",
		"a: {b: c}\n", "a: >\n  folded\n", "a: b # comment\n", "a: b\n  # inside\n  c\n", "y: b\n", "<<: b\n",
		"a: |1x\n b\n", "a: b \n", "a:\tb\n", "- a\n", "a: '\n", "a: \"\\q\"\n", "? a\n: b\n", "a: b: c\n",
		"a:\n- - nested\n",
	}
	for _, doc := range leftToGoYAML {
		if _, err := decodeBlockYAML([]byte(doc)); !errors.Is(err, errNotBlockYAML) {
			t.Errorf("decodeBlockYAML(%q) = %v, want it left to go-yaml", doc, err)
		}
	}
	readAsGoYAMLDoes := []string{
		"# a comment only\n",
		"a: b\nc: 12\nd: -3\ne: 0\nf: true\ng: false\nh: null\ni:\nj: text with 'quotes' and \"more\"\n",
		"a:\n  b:\n    c: d\n  e: f\ng: h\n",
		"a:\n- b\n- c\nd:\n  - e\n  - f: g\n    h: i\n  -\n    j: k\n",
		"a: plain text\n  folded over\n  lines\n\n  and a break\nb: c\n",
		"a: 'single '' quoted\n  over lines\n\n  with a break'\nb: 'x'\n",
		"a: \"double \\\" quoted \\n \\u00e9 \\x41\n  folded\"\nb: \"esc\\\n  aped\"\n",
		"a: |\n  literal\n    indented\n\n  text\nb: |-\n  stripped\n\nc: |+\n  kept\n\nd: x\n",
		"a:\n  b: |2-\n\n\n      Valid Options: X\n  c: d\n",
		"\"quoted/key\": v\n'single': w\n",
		"a: []\nb: {}\n",
		"rule: 'has(self.a) ? ((self.b == \"W\") ?\n  has(self.c) : !has(self.c)) : true'\n",
	}
	for _, doc := range readAsGoYAMLDoes {
		fast, err := decodeBlockYAML([]byte(doc))
		if err != nil {
			t.Errorf("decodeBlockYAML(%q): %v", doc, err)
			continue
		}
		raw, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("go-yaml cannot decode %q: %v", doc, err)
		}
		var want map[string]any
		if err := utiljson.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if fast == nil && want == nil {
			continue
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("decodeBlockYAML(%q) = %#v, go-yaml decodes %#v", doc, fast, want)
		}
	}
}

// BenchmarkDecodeIstioCRDs decodes the CRD file of the default version one document after another, through go-yaml
// and through decodeBlockYAML.
func BenchmarkDecodeIstioCRDs(b *testing.B) {
	chrt, err := istio.LoadChart(istio.DefaultCatalog.Versions[0], istio.ChartBase)
	if err != nil {
		b.Fatal(err)
	}
	data := crdFileOf(chrt).Data
	docs, err := splitDocuments(string(data))
	if err != nil {
		b.Fatal(err)
	}
	for name, decode := range map[string]func([]byte) (*unstructured.Unstructured, error){
		"go-yaml": decodeDocument, "block": decodeCRDDocument,
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				for _, doc := range docs {
					if _, err := decode(doc); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
