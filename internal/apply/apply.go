// Package apply applies rendered objects with server-side apply and prunes what a new render no longer contains. It
// owns the field policy (which fields Meshwright asserts, which it leaves to istiod) and the inventory IDs. It never
// renders, and it deletes only objects that still carry the owner label of the mesh being reconciled.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// FieldOwner is the server-side apply field manager of everything Meshwright applies.
const FieldOwner = "meshwright"

// AnnotationAppliedHash records the hash of the configuration last applied to an object. A changed hash means the
// render changed; an unchanged hash with differing fields means someone else changed the object (drift).
const AnnotationAppliedHash = "mesh.meshwright.dev/applied-hash"

// Result says what an Apply did.
type Result struct {
	// Created, Updated and Drifted list the IDs of objects written; objects already in sync are not written.
	// Updated objects changed because the render changed; Drifted ones because someone else changed them.
	Created []string
	Updated []string
	Drifted []string
	// Unchanged counts objects that were already in sync.
	Unchanged int
}

// Changed reports whether anything was written.
func (r Result) Changed() bool { return len(r.Created)+len(r.Updated)+len(r.Drifted) > 0 }

// Applier applies objects. Reader should be the manager's cache, so that an object in sync costs no API request;
// Writer talks to the API server.
type Applier struct {
	Reader client.Reader
	Writer client.Client
}

// Apply server-side applies objs in order (the render's stage order). An object whose live state already holds every
// field Meshwright asserts, with the same applied hash, is not written.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) (Result, error) {
	var res Result
	for _, desired := range objs {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(desired.GroupVersionKind())
		err := a.Reader.Get(ctx, client.ObjectKeyFromObject(desired), live)
		switch {
		case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
			live = nil
		case err != nil:
			return res, fmt.Errorf("reading %s: %w", IDOf(desired), err)
		}
		obj := withFieldPolicy(desired, live)
		hash, err := hashOf(obj)
		if err != nil {
			return res, err
		}
		sameHash := live != nil && live.GetAnnotations()[AnnotationAppliedHash] == hash
		if sameHash {
			field := driftedField(obj.Object, live.Object, "")
			if field == "" {
				res.Unchanged++
				continue
			}
			log.FromContext(ctx).V(1).Info("Repairing drift", "object", IDOf(desired).String(), "field", field)
		}
		// Write from a copy: rendered objects are shared with the render cache, and the client decodes the
		// server's response into the object it sends.
		obj = obj.DeepCopy()
		ann := obj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationAppliedHash] = hash
		obj.SetAnnotations(ann)
		if err := a.Writer.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj),
			client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return res, fmt.Errorf("applying %s: %w", IDOf(desired), err)
		}
		switch id := IDOf(desired).String(); {
		case live == nil:
			res.Created = append(res.Created, id)
		case sameHash:
			res.Drifted = append(res.Drifted, id)
		default:
			res.Updated = append(res.Updated, id)
		}
	}
	return res, nil
}

// Delete deletes the inventory entries ids whose live object still carries ownerLabel=owner, and returns the entries
// that could not be deleted (they stay in the inventory and are tried again). Objects already gone, and objects
// whose owner label was removed or changed (a user took them over), count as deleted.
func (a *Applier) Delete(ctx context.Context, ids []string, ownerLabel, owner string) (remaining []string, err error) {
	var errs []error
	for _, entry := range ids {
		id, perr := ParseID(entry)
		if perr != nil {
			continue // an entry we cannot read was not written by this version; nothing to delete
		}
		mapping, merr := a.Writer.RESTMapper().RESTMapping(id.GroupKind)
		if meta.IsNoMatchError(merr) {
			continue // the kind no longer exists, so neither does the object
		}
		if merr != nil {
			remaining, errs = append(remaining, entry), append(errs, merr)
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(mapping.GroupVersionKind)
		if gerr := a.Writer.Get(ctx, client.ObjectKey{Namespace: id.Namespace, Name: id.Name}, live); gerr != nil {
			if !apierrors.IsNotFound(gerr) {
				remaining, errs = append(remaining, entry), append(errs, gerr)
			}
			continue
		}
		if live.GetLabels()[ownerLabel] != owner {
			continue
		}
		if derr := a.Writer.Delete(ctx, live, client.PropagationPolicy("Background"),
			client.Preconditions{UID: ptr(live.GetUID())}); derr != nil && !apierrors.IsNotFound(derr) {
			remaining, errs = append(remaining, entry), append(errs, fmt.Errorf("deleting %s: %w", entry, derr))
		}
	}
	return remaining, errors.Join(errs...)
}

func hashOf(o *unstructured.Unstructured) (string, error) {
	raw, err := json.Marshal(o.Object)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", IDOf(o), err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8]), nil
}

func ptr[T any](v T) *T { return &v }
