package argocd

import (
	"bytes"
	"fmt"
	"strings"
)

// ServiceMeshHealthKey is the argocd-cm key under which Argo CD looks for the ServiceMesh's health script.
const ServiceMeshHealthKey = "resource.customizations.health.mesh.meshwright.dev_ServiceMesh"

// ConfigMapPatch renders the argocd-cm patch that installs script as the ServiceMesh's health check, with the script
// as a literal block so it reads (and diffs) like health.lua itself.
func ConfigMapPatch(script string) ([]byte, error) {
	if script == "" || !strings.HasSuffix(script, "\n") || strings.HasSuffix(script, "\n\n") {
		// A literal block with the default chomping keeps exactly one final newline; anything else would not round-trip.
		return nil, fmt.Errorf("the health script must end with exactly one newline")
	}
	var b bytes.Buffer
	b.WriteString(`# Generated from config/argocd/health.lua by ` + "`make argocd`" + `; do not edit.
# Patch Argo CD's argocd-cm with it (kubectl -n argocd patch configmap argocd-cm --patch-file argocd-cm.yaml, or as a
# strategic-merge patch in the kustomization that installs Argo CD). The script needs no standard libraries, so
# resource.customizations.useOpenLibs is not set.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
  ` + ServiceMeshHealthKey + `: |
`)
	for _, line := range strings.SplitAfter(script, "\n") {
		if line == "" {
			continue
		}
		if strings.TrimSpace(line) == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("    " + line)
	}
	return b.Bytes(), nil
}
