package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshwright/meshwright/api/v1alpha1"
)

// AnnotationPreExisting marks a CustomResourceDefinition that existed before Meshwright first applied it (installed
// by Helm, istioctl or by hand). Meshwright keeps it on the schema of the version it runs, since istiod needs that,
// but never deletes it: objects of that kind may predate the mesh. The annotation is set by Meshwright's own apply,
// so it stays as long as Meshwright manages the CRD, and the next ServiceMesh that finds it keeps it.
const AnnotationPreExisting = "mesh.meshwright.dev/pre-existing"

// Claim says on what ground Meshwright may write an object that is not among the owner's labelled live objects.
type Claim int

const (
	// ClaimCreate: the object does not exist, or it already carries the owner label (the cache lags behind).
	ClaimCreate Claim = iota
	// ClaimAdopt: the object carries meshv1.AnnotationAdopt naming the owner; it becomes the owner's.
	ClaimAdopt
	// ClaimPreExisting: a CRD that existed before without the owner label. It is updated and marked with
	// AnnotationPreExisting, so that it is never deleted.
	ClaimPreExisting
	// ClaimUseAsIs: a Namespace that existed before. It is used as it is: never labelled, patched or deleted.
	ClaimUseAsIs
	// ClaimOrphan: the object carries the owner label of an owner that no longer exists (Meshwright created it for a
	// ServiceMesh deleted before its inventory covered it); it becomes this owner's.
	ClaimOrphan
)

// Claims holds the Claim of the objects that are not among the owner's labelled live objects.
type Claims map[ObjectID]Claim

// IDs returns the sorted IDs of the objects with claim c.
func (c Claims) IDs(claim Claim) []ObjectID {
	var out []ObjectID
	for id, cl := range c {
		if cl == claim {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b ObjectID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// ConflictError lists live objects that Meshwright did not create and was not told to adopt. Nothing was written.
type ConflictError struct {
	Owner   string
	Objects []ObjectID
}

func (e *ConflictError) Error() string {
	names := make([]string, 0, len(e.Objects))
	for _, id := range e.Objects {
		names = append(names, id.Describe())
	}
	return fmt.Sprintf("Objects exist that Meshwright did not create: %s; delete them, or annotate each with %s=%s to let Meshwright take them over",
		strings.Join(names, ", "), meshv1.AnnotationAdopt, e.Owner)
}

// Check decides, before anything is written, whether each of objs is Meshwright's to write. Objects among the
// owner's labelled live objects (from Reader, the cache) are; each other one is looked up on the API server (a
// metadata-only GET through Uncached, so no new cache is needed and a steady state, where every object is labelled,
// costs no request). A live object without the owner label is a conflict, unless it is a Namespace (used as it is),
// a CRD (updated, marked pre-existing), annotated for adoption by this owner, or labelled for an owner that no longer
// exists (see OwnerExists). On any conflict Check returns a *ConflictError naming every conflicting object.
func (a *Applier) Check(ctx context.Context, objs []*unstructured.Unstructured) (Claims, error) {
	live, err := a.liveObjects(ctx, objs)
	if err != nil {
		return nil, err
	}
	return a.claim(ctx, objs, live)
}

func (a *Applier) claim(ctx context.Context, objs []*unstructured.Unstructured, live map[ObjectID]*unstructured.Unstructured) (Claims, error) {
	claims := Claims{}
	var conflicts []ObjectID
	gone := map[string]bool{} // other owners, by whether they no longer exist
	// Objects missing from the labelled live objects are looked up on the API server, concurrently.
	var unknown []*unstructured.Unstructured
	for _, o := range objs {
		id := IDOf(o)
		if _, ok := live[id]; ok {
			continue
		}
		if c, ok := a.Claims[id]; ok {
			claims[id] = c
			continue
		}
		unknown = append(unknown, o)
	}
	existing := make([]*metav1.PartialObjectMetadata, len(unknown))
	if err := runBatched(unknown, func(*unstructured.Unstructured) int { return 0 }, a.Concurrency, func(i int) error {
		var err error
		existing[i], err = a.getMetadata(ctx, unknown[i])
		return err
	}); err != nil {
		return nil, err
	}
	for i, o := range unknown {
		id := IDOf(o)
		existing := existing[i]
		c, ok := a.claimOf(o, existing)
		if !ok {
			if orphan, err := a.orphaned(ctx, existing, gone); err != nil {
				return nil, err
			} else if orphan {
				c, ok = ClaimOrphan, true
			}
		}
		if !ok {
			conflicts = append(conflicts, id)
			continue
		}
		claims[id] = c
	}
	if len(conflicts) > 0 {
		return nil, &ConflictError{Owner: a.Owner, Objects: conflicts}
	}
	return claims, nil
}

// claimOf returns the claim on desired given its live metadata (nil when absent), and false for a conflict.
func (a *Applier) claimOf(desired *unstructured.Unstructured, existing *metav1.PartialObjectMetadata) (Claim, bool) {
	if existing == nil {
		return ClaimCreate, true
	}
	ours := existing.Labels[a.OwnerLabel] == a.Owner
	switch desired.GetKind() {
	case "Namespace":
		if ours {
			return ClaimCreate, true
		}
		return ClaimUseAsIs, true
	case "CustomResourceDefinition":
		// A CRD that Meshwright created for an earlier ServiceMesh (labelled with another owner) is Meshwright's;
		// one without any owner label, or already marked, existed before Meshwright.
		if existing.Annotations[AnnotationPreExisting] == "true" || existing.Labels[a.OwnerLabel] == "" {
			return ClaimPreExisting, true
		}
		return ClaimCreate, true
	}
	switch {
	case ours:
		return ClaimCreate, true
	case existing.Annotations[meshv1.AnnotationAdopt] == a.Owner:
		return ClaimAdopt, true
	}
	return 0, false
}

// orphaned reports whether existing carries the owner label of an owner that no longer exists, asking OwnerExists
// once per owner (gone remembers the answers).
func (a *Applier) orphaned(ctx context.Context, existing *metav1.PartialObjectMetadata, gone map[string]bool) (bool, error) {
	owner := existing.Labels[a.OwnerLabel]
	if owner == "" || a.OwnerExists == nil {
		return false, nil
	}
	if g, ok := gone[owner]; ok {
		return g, nil
	}
	exists, err := a.OwnerExists(ctx, owner)
	if err != nil {
		return false, fmt.Errorf("checking whether %s, the owner of existing objects, exists: %w", owner, err)
	}
	gone[owner] = !exists
	return !exists, nil
}

// getMetadata reads the metadata of the live object desired names, nil when there is none. A kind that is not
// served (its CRD comes with this apply) has no objects, so none can conflict.
func (a *Applier) getMetadata(ctx context.Context, desired *unstructured.Unstructured) (*metav1.PartialObjectMetadata, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(desired.GroupVersionKind())
	err := a.uncached().Get(ctx, client.ObjectKeyFromObject(desired), m)
	switch {
	case apierrors.IsNotFound(err), meta.IsNoMatchError(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("checking whether %s already exists: %w", IDOf(desired).Describe(), err)
	}
	return m, nil
}

func (a *Applier) uncached() client.Reader {
	if a.Uncached != nil {
		return a.Uncached
	}
	return a.Writer
}

// Describe names the object for users: "ConfigMap istio-system/istio", or "ClusterRole istiod" when cluster-scoped.
func (id ObjectID) Describe() string {
	if id.Namespace == "" {
		return id.GroupKind.Kind + " " + id.Name
	}
	return id.GroupKind.Kind + " " + id.Namespace + "/" + id.Name
}

// spared reports whether Delete must leave a live object alone although it carries the owner label: Namespaces may
// hold objects others put there, and CRDs that existed before Meshwright back objects that may predate the mesh.
func spared(live *unstructured.Unstructured) bool {
	return live.GetKind() == "Namespace" || live.GetAnnotations()[AnnotationPreExisting] == "true"
}
