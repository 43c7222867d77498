package apply

import (
	"context"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BodylessApplier is a Writer that can server-side apply an object without reading the API server's answer, which
// Apply never uses: the applied object comes back whole, and for Istio's CRDs decoding it cost a first install more
// CPU than anything else the operator does while the API server establishes them. Apply uses it when Writer has it.
// An implementation never modifies obj: rendered objects are shared with the render cache.
type BodylessApplier interface {
	ApplyBodyless(ctx context.Context, obj *unstructured.Unstructured, fieldOwner string) error
}

// Bodyless is a client whose server-side applies of unstructured objects (ApplyBodyless) ask for the answer in
// protobuf where the kind has it (cheaper for the API server to encode than JSON) and leave it undecoded; errors are
// decoded as the client's own are. Everything else is the embedded client's.
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
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf, application/json"
	rc, err := rest.RESTClientForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	return &Bodyless{Client: c, rest: rc}, nil
}

// ApplyBodyless server-side applies obj with force as fieldOwner. A kind that is not served fails with the RESTMapper's
// no-match error, as the client's Apply does.
func (b *Bodyless) ApplyBodyless(ctx context.Context, obj *unstructured.Unstructured, fieldOwner string) error {
	gvk := obj.GroupVersionKind()
	mapping, err := b.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return err
	}
	prefix := []string{"/apis", gvk.Group, gvk.Version}
	if gvk.Group == "" {
		prefix = []string{"/api", gvk.Version}
	}
	req := b.rest.Patch(types.ApplyPatchType).AbsPath(prefix...)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		req = req.Namespace(obj.GetNamespace())
	}
	return req.Resource(mapping.Resource.Resource).Name(obj.GetName()).
		Param("fieldManager", fieldOwner).Param("force", "true").Body(body).Do(ctx).Error()
}
