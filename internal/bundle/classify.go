package bundle

import (
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// parts is the rendered config sorted into what a bundle does with each object.
type parts struct {
	crds []*apiextensionsv1.CustomResourceDefinition
	// crdObjects are the CRDs as rendered, written to manifests/ unchanged but for labels.
	crdObjects  []*unstructured.Unstructured
	deployments []*appsv1.Deployment
	// samples are custom resources of an owned CRD: they become alm-examples.
	samples []*unstructured.Unstructured
	// clusterPermissions and permissions are the rules bound to each Deployment's service account, by account.
	clusterPermissions map[string][]rbacv1.PolicyRule
	permissions        map[string][]rbacv1.PolicyRule
	// shipped are the other objects OLM can install, each becoming its own file in manifests/.
	shipped []*unstructured.Unstructured
	// dropped are objects config/default installs that a registry+v1 bundle cannot carry.
	dropped []*unstructured.Unstructured
}

// AllowedKinds are the kinds OLM installs from a registry+v1 bundle's manifests/ (operator-registry's supported
// resources).
var AllowedKinds = map[string]bool{
	"ClusterServiceVersion": true, "CustomResourceDefinition": true, "Secret": true, "ConfigMap": true,
	"ServiceAccount": true, "Service": true, "Role": true, "RoleBinding": true, "ClusterRole": true,
	"ClusterRoleBinding": true, "PrometheusRule": true, "ServiceMonitor": true, "PodMonitor": true,
	"PodDisruptionBudget": true, "PriorityClass": true, "VerticalPodAutoscaler": true, "NetworkPolicy": true,
	"ConsoleYAMLSample": true, "ConsoleQuickStart": true, "ConsoleCLIDownload": true, "ConsoleLink": true,
	"ConsolePlugin": true,
}

type objectKey struct{ kind, namespace, name string }

func keyOf(u *unstructured.Unstructured) objectKey {
	return objectKey{u.GetKind(), u.GetNamespace(), u.GetName()}
}

// classify sorts the rendered objects. The Deployment's service account, the bindings that only bind roles to it and
// the roles only those bindings use become the CSV's install strategy; OLM creates them itself.
func classify(objects []*unstructured.Unstructured) (*parts, error) {
	p := &parts{clusterPermissions: map[string][]rbacv1.PolicyRule{}, permissions: map[string][]rbacv1.PolicyRule{}}
	ownedGK := map[schema.GroupKind]bool{}
	for _, u := range objects {
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := fromUnstructured(u, crd); err != nil {
			return nil, err
		}
		p.crds = append(p.crds, crd)
		p.crdObjects = append(p.crdObjects, u)
		ownedGK[schema.GroupKind{Group: crd.Spec.Group, Kind: crd.Spec.Names.Kind}] = true
	}
	accounts := map[objectKey]bool{}
	for _, u := range objects {
		if u.GetKind() != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		if err := fromUnstructured(u, d); err != nil {
			return nil, err
		}
		p.deployments = append(p.deployments, d)
		accounts[objectKey{"ServiceAccount", d.Namespace, serviceAccountOf(d)}] = true
	}
	if len(p.deployments) == 0 {
		return nil, fmt.Errorf("%s renders no Deployment for the CSV to install", manifestsKustomization)
	}
	absorbed, err := p.bindPermissions(objects, accounts)
	if err != nil {
		return nil, err
	}
	for _, u := range objects {
		gk := u.GroupVersionKind().GroupKind()
		switch {
		case gk.Kind == "CustomResourceDefinition" || gk.Kind == "Deployment" || absorbed[keyOf(u)]:
		case ownedGK[gk]:
			p.samples = append(p.samples, u)
		case gk.Kind == "Namespace":
			// OLM installs into the namespace of the OperatorGroup the user picks.
		case AllowedKinds[gk.Kind]:
			p.shipped = append(p.shipped, u)
		default:
			p.dropped = append(p.dropped, u)
		}
	}
	return p, nil
}

func serviceAccountOf(d *appsv1.Deployment) string {
	if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "" {
		return sa
	}
	return "default"
}

// bindPermissions collects the rules bound to the Deployments' service accounts and returns the objects that the
// CSV's permissions replace: those accounts, bindings whose every subject is one of them, and roles referenced only
// by such bindings.
func (p *parts) bindPermissions(objects []*unstructured.Unstructured, accounts map[objectKey]bool) (map[objectKey]bool, error) {
	roles := map[objectKey]*unstructured.Unstructured{}
	var bindings []*unstructured.Unstructured
	for _, u := range objects {
		switch u.GetKind() {
		case "Role", "ClusterRole":
			roles[keyOf(u)] = u
		case "RoleBinding", "ClusterRoleBinding":
			bindings = append(bindings, u)
		}
	}
	sort.SliceStable(bindings, func(i, j int) bool { return bindings[i].GetName() < bindings[j].GetName() })

	absorbed := map[objectKey]bool{}
	for key := range accounts {
		absorbed[key] = true
	}
	usedElsewhere := map[objectKey]bool{}
	for _, u := range bindings {
		subjects, roleKey, err := decodeBinding(u)
		if err != nil {
			return nil, err
		}
		bound := boundAccounts(subjects, u.GetNamespace(), accounts)
		if len(bound) < len(subjects) {
			usedElsewhere[roleKey] = true
		}
		if len(bound) == 0 {
			continue
		}
		role, ok := roles[roleKey]
		if !ok {
			return nil, fmt.Errorf("%s %s binds %s %s, which %s does not render", u.GetKind(), u.GetName(),
				roleKey.kind, roleKey.name, manifestsKustomization)
		}
		rules, err := rulesOf(role)
		if err != nil {
			return nil, err
		}
		target := p.permissions
		if u.GetKind() == "ClusterRoleBinding" {
			target = p.clusterPermissions
		}
		for _, account := range bound {
			target[account] = append(target[account], rules...)
		}
		if len(bound) == len(subjects) {
			absorbed[keyOf(u)] = true
			absorbed[roleKey] = true
		}
	}
	for key := range usedElsewhere {
		delete(absorbed, key)
	}
	return absorbed, nil
}

// decodeBinding returns a RoleBinding's or ClusterRoleBinding's subjects and the key of the role it references.
func decodeBinding(u *unstructured.Unstructured) ([]rbacv1.Subject, objectKey, error) {
	var b rbacv1.RoleBinding // a ClusterRoleBinding has the same subjects and roleRef
	if err := fromUnstructured(u, &b); err != nil {
		return nil, objectKey{}, err
	}
	roleKey := objectKey{kind: b.RoleRef.Kind, name: b.RoleRef.Name}
	if b.RoleRef.Kind == "Role" {
		roleKey.namespace = u.GetNamespace()
	}
	return b.Subjects, roleKey, nil
}

// boundAccounts returns the names of the Deployment service accounts among the subjects.
func boundAccounts(subjects []rbacv1.Subject, bindingNamespace string, accounts map[objectKey]bool) []string {
	var names []string
	for _, s := range subjects {
		if s.Kind != "ServiceAccount" {
			continue
		}
		namespace := s.Namespace
		if namespace == "" {
			namespace = bindingNamespace
		}
		if accounts[objectKey{"ServiceAccount", namespace, s.Name}] {
			names = append(names, s.Name)
		}
	}
	return names
}

func rulesOf(role *unstructured.Unstructured) ([]rbacv1.PolicyRule, error) {
	var r rbacv1.ClusterRole // a Role has the same rules
	if err := fromUnstructured(role, &r); err != nil {
		return nil, err
	}
	return r.Rules, nil
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		return fmt.Errorf("decoding %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}
