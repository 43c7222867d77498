package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MetadataApplier is a Writer that server-side applies an object and reads back only the applied object's metadata:
// the API server otherwise sends the whole object, and for Istio's CRDs decoding it cost a first install more CPU
// than anything else the operator did while the API server establishes them. Apply uses it when Writer has it; the
// metadata (uid, generation) records which version of a CRD holds the render (MetadataOnly). An implementation never
// modifies obj: rendered objects are shared with the render cache.
type MetadataApplier interface {
	ApplyForMetadata(ctx context.Context, obj *unstructured.Unstructured, fieldOwner string) (metav1.ObjectMeta, error)
}

// Bodyless is a client whose server-side applies of unstructured objects (ApplyForMetadata) ask for the answer as the
// object's metadata only (PartialObjectMetadata: the API server encodes no more); errors are decoded as the client's
// own are. Everything else is the embedded client's.
type Bodyless struct {
	client.Client
	rest rest.Interface
}

// NewBodyless wraps c; cfg and httpClient are the ones c was made with (the manager's), so that requests share its
// connection and whatever wraps its transport.
func NewBodyless(c client.Client, cfg *rest.Config, httpClient *http.Client) (*Bodyless, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.APIPath = ""
	cfg.GroupVersion = &schema.GroupVersion{}
	cfg.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	rc, err := rest.RESTClientForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return &Bodyless{Client: c, rest: rc}, nil
}

// metadataAnswer asks the API server for an object's metadata only.
const metadataAnswer = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"

// ApplyForMetadata server-side applies obj with force as fieldOwner and returns the metadata of the object applied. A
// kind that is not served fails with the RESTMapper's no-match error, as the client's Apply does.
func (b *Bodyless) ApplyForMetadata(ctx context.Context, obj *unstructured.Unstructured, fieldOwner string) (metav1.ObjectMeta, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := b.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return metav1.ObjectMeta{}, err
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return metav1.ObjectMeta{}, err
	}
	prefix := []string{"/apis", gvk.Group, gvk.Version}
	if gvk.Group == "" {
		prefix = []string{"/api", gvk.Version}
	}
	req := b.rest.Patch(types.ApplyPatchType).AbsPath(prefix...).SetHeader("Accept", metadataAnswer)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		req = req.Namespace(obj.GetNamespace())
	}
	raw, err := req.Resource(mapping.Resource.Resource).Name(obj.GetName()).
		Param("fieldManager", fieldOwner).Param("force", "true").Body(body).Do(ctx).Raw()
	if err != nil {
		return metav1.ObjectMeta{}, err
	}
	var answer metav1.PartialObjectMetadata
	if err := json.Unmarshal(raw, &answer); err != nil {
		return metav1.ObjectMeta{}, fmt.Errorf("reading the answer to applying %s: %w", IDOf(obj), err)
	}
	return answer.ObjectMeta, nil
}
