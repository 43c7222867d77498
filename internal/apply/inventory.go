package apply

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ObjectID identifies an applied object in the inventory: "<namespace>_<name>_<group>_<kind>". The version is left
// out on purpose: an object stays the same object across API versions, and deletes resolve the version through
// the REST mapper.
type ObjectID struct {
	Namespace string
	Name      string
	GroupKind schema.GroupKind
}

// IDOf returns the inventory ID of an object.
func IDOf(o *unstructured.Unstructured) ObjectID {
	return ObjectID{Namespace: o.GetNamespace(), Name: o.GetName(), GroupKind: o.GroupVersionKind().GroupKind()}
}

func (id ObjectID) String() string {
	return strings.Join([]string{id.Namespace, id.Name, id.GroupKind.Group, id.GroupKind.Kind}, "_")
}

// ParseID parses the String form of an ObjectID.
func ParseID(s string) (ObjectID, error) {
	parts := strings.Split(s, "_")
	if len(parts) != 4 || parts[1] == "" || parts[3] == "" {
		return ObjectID{}, fmt.Errorf("invalid inventory entry %q", s)
	}
	return ObjectID{Namespace: parts[0], Name: parts[1], GroupKind: schema.GroupKind{Group: parts[2], Kind: parts[3]}}, nil
}

// Inventory returns the sorted inventory entries of objects.
func Inventory(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, IDOf(o).String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Stale returns the entries of previous that current no longer has.
func Stale(previous, current []string) []string {
	var out []string
	for _, e := range previous {
		if !slices.Contains(current, e) {
			out = append(out, e)
		}
	}
	return out
}
