package ociimage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Push sends the one image or index the layout in dir holds to the registry reference ref (a tag or a digest) and
// returns its digest, which is the digest printed at build time: pushing does not rewrite manifests. Credentials come
// from the Docker config (~/.docker/config.json, credential helpers) unless options say otherwise.
func Push(ctx context.Context, dir, ref string, options ...remote.Option) (v1.Hash, error) {
	reference, err := name.ParseReference(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	artifact, err := ReadLayout(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	options = append([]remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("meshwright-image"),
	}, options...)
	if artifact.Index != nil {
		err = remote.WriteIndex(reference, artifact.Index, options...)
	} else {
		err = remote.Write(reference, artifact.Image, options...)
	}
	if err != nil {
		return v1.Hash{}, &PushError{Reference: reference, Err: err}
	}
	return artifact.Descriptor.Digest, nil
}

// PushError says which registry a push failed at and why, in one line fit for a terminal.
type PushError struct {
	Reference name.Reference
	Err       error
}

func (e *PushError) Error() string {
	return fmt.Sprintf("pushing %s to registry %s: %s", e.Reference.Name(), e.Reference.Context().RegistryStr(),
		reason(e.Err))
}

func (e *PushError) Unwrap() error { return e.Err }

// reason shortens a registry error to its status and the registry's own error codes; other errors (DNS, TLS,
// connection refused) are kept but folded into one line.
func reason(err error) string {
	var registryErr *transport.Error
	if !errors.As(err, &registryErr) {
		return strings.Join(strings.Fields(err.Error()), " ")
	}
	status := fmt.Sprintf("HTTP %d %s", registryErr.StatusCode, http.StatusText(registryErr.StatusCode))
	var details []string
	for _, diagnostic := range registryErr.Errors {
		details = append(details, strings.Join(strings.Fields(diagnostic.String()), " "))
	}
	if len(details) == 0 {
		return status
	}
	return status + " (" + strings.Join(details, "; ") + ")"
}
