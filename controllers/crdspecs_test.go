package controllers

import (
	"context"
	"fmt"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshwright/meshwright/internal/apply"
	"github.com/meshwright/meshwright/internal/render"
	"github.com/meshwright/meshwright/internal/testutil"
)

// The cache holds CRDs as metadata only. The Applier then reads a CRD whole from the API server only for a version
// of it (uid, generation) not yet seen to hold the render: never after its own write (whose answer says which
// version holds it), once after a restart, and again when someone changed the spec, which it puts back.
func TestCRDsAreReadWholeOnlyForAVersionNotSeenInSync(t *testing.T) {
	ctx := context.Background()
	if !reconciler.cache.WaitForCacheSync(ctx) {
		t.Fatal("the manager's cache did not sync")
	}
	const name = "widgets.specs.meshwright.test"
	crd := func(shortName string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": name, "labels": map[string]any{
				render.LabelManagedBy: render.ManagedBy, render.LabelOwner: "crd-specs"}},
			"spec": map[string]any{"group": "specs.meshwright.test", "scope": "Namespaced",
				"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
					"shortNames": []any{shortName}},
				"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object",
						"x-kubernetes-preserve-unknown-fields": true}}}}},
		}}
	}
	desired := []*unstructured.Unstructured{crd("wd")}
	if err := apply.StampHashes(desired); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		live := &apiextensionsv1.CustomResourceDefinition{}
		if k8sClient.Get(ctx, client.ObjectKey{Name: name}, live) == nil {
			_ = k8sClient.Delete(ctx, live)
		}
		waitCRDsGone(t, name)
	})

	writer := &testutil.CountingClient{Client: k8sClient}
	run := func(specs *apply.MetadataOnly) (gets int, writes int64) {
		t.Helper()
		live := &countingReader{Reader: managerAPIReader}
		specs.Live = live
		before := writer.Writes()
		a := &apply.Applier{Reader: reconciler.Client, Writer: writer, Uncached: managerAPIReader, OwnerLabel: render.LabelOwner,
			Owner: "crd-specs", MetadataOnly: specs}
		if _, err := a.Apply(ctx, desired); err != nil {
			t.Fatal(err)
		}
		return live.gets, writer.Writes() - before
	}
	newSpecs := func() *apply.MetadataOnly {
		return &apply.MetadataOnly{Kinds: map[schema.GroupKind]bool{crdGVK.GroupKind(): true}}
	}
	// cached waits until the cache holds the CRD at generation, and says that it holds no more than its metadata.
	cached := func(generation int64) {
		t.Helper()
		testutil.Eventually(t, waitTimeout, func() error {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(crdGVK)
			if err := reconciler.Client.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
				return err
			}
			if got.GetGeneration() != generation {
				return fmt.Errorf("the cache holds generation %d, want %d", got.GetGeneration(), generation)
			}
			if _, ok := got.Object["spec"]; ok {
				t.Fatalf("the cache returned a CRD with its spec: want metadata only")
			}
			return nil
		})
	}

	specs := newSpecs()
	if gets, writes := run(specs); gets != 0 || writes != 1 {
		t.Fatalf("creating the CRD: %d whole reads, %d writes; want none and one", gets, writes)
	}
	cached(1)
	if gets, writes := run(specs); gets != 0 || writes != 0 {
		t.Errorf("after its own write: %d whole reads, %d writes; want none (the answer said which version holds the render)", gets, writes)
	}

	// A process that lists the CRDs whole ahead of its first Apply (listCRDsAhead, then MetadataOnly.Check) reads none of them again.
	ahead := newSpecs()
	whole := &unstructured.UnstructuredList{}
	whole.SetGroupVersionKind(crdListGVK)
	if err := managerAPIReader.List(ctx, whole, client.MatchingLabels{render.LabelOwner: "crd-specs"}); err != nil {
		t.Fatal(err)
	}
	ahead.Check(desired, whole.Items)
	if gets, writes := run(ahead); gets != 0 || writes != 0 {
		t.Errorf("after a restart that checked the CRDs ahead: %d whole reads, %d writes; want none", gets, writes)
	}

	// While the check ahead is not done, an Apply takes the CRD as it is, and says so; once it is done, the next one
	// reads what the check did not record.
	pending := newSpecs()
	open := make(chan struct{})
	pending.Ahead = open
	if gets, writes := run(pending); gets != 0 || writes != 0 || !pending.Deferred() {
		t.Errorf("before the check ahead is done: %d whole reads, %d writes, deferred %v; want none, none, true", gets, writes, pending.Deferred())
	}
	close(open)
	if gets, writes := run(pending); gets != 1 || writes != 0 {
		t.Errorf("once the check ahead is done (it recorded nothing): %d whole reads, %d writes; want one read and no write", gets, writes)
	}

	restarted := newSpecs()
	if gets, writes := run(restarted); gets != 1 || writes != 0 {
		t.Errorf("after a restart: %d whole reads, %d writes; want one read and no write", gets, writes)
	}
	if gets, writes := run(restarted); gets != 0 || writes != 0 {
		t.Errorf("once read: %d whole reads, %d writes; want none", gets, writes)
	}

	edited := &apiextensionsv1.CustomResourceDefinition{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, edited); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(edited.DeepCopy())
	edited.Spec.Names.ShortNames = []string{"edited"}
	if err := k8sClient.Patch(ctx, edited, patch, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	cached(2)
	if gets, writes := run(restarted); gets != 1 || writes != 1 {
		t.Errorf("after someone edited its spec: %d whole reads, %d writes; want one of each (the repair)", gets, writes)
	}
	repaired := &apiextensionsv1.CustomResourceDefinition{}
	if err := k8sClient.Get(ctx, client.ObjectKey{Name: name}, repaired); err != nil {
		t.Fatal(err)
	}
	if got := repaired.Spec.Names.ShortNames; len(got) != 1 || got[0] != "wd" {
		t.Errorf("short names after the repair: %v, want [wd]", got)
	}
	cached(repaired.Generation)
	if gets, writes := run(restarted); gets != 0 || writes != 0 {
		t.Errorf("after the repair: %d whole reads, %d writes; want none", gets, writes)
	}
}
