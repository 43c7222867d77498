package gatewayapi_test

import (
	"testing"

	"github.com/meshwright/meshwright/internal/gatewayapi"
	"github.com/meshwright/meshwright/internal/render"
)

// The owner label is repeated here to keep this package light; Foreign must read the label the renderer writes.
func TestOwnerLabelIsTheRenderers(t *testing.T) {
	if gatewayapi.LabelOwner != render.LabelOwner {
		t.Errorf("gatewayapi.LabelOwner = %q, render.LabelOwner = %q", gatewayapi.LabelOwner, render.LabelOwner)
	}
}
