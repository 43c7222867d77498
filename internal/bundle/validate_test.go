package bundle

import (
	"encoding/base64"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	crdPath     = ManifestsDir + "/mesh.meshwright.dev_servicemeshes.yaml"
	servicePath = ManifestsDir + "/meshwright-controller-manager-metrics-service_v1_service.yaml"
)

func TestCommittedBundleAndCatalogAreValid(t *testing.T) {
	for _, p := range Validate(filepath.Join(repoRoot, BundleDir), filepath.Join(repoRoot, DockerfilePath)) {
		t.Errorf("committed bundle: %v", p)
	}
	for _, p := range ValidateCatalog(filepath.Join(repoRoot, CatalogFile)) {
		t.Errorf("committed catalog: %v", p)
	}
}

func TestFreshlyGeneratedBundleIsValid(t *testing.T) {
	root := goodRoot(t)
	for _, p := range validateRoot(root) {
		t.Errorf("generated bundle: %v", p)
	}
	for _, p := range ValidateCatalog(filepath.Join(root, CatalogFile)) {
		t.Errorf("generated catalog: %v", p)
	}
}

// Each row breaks one rule of shared/DELIVERY.md in a copy of a good bundle; the validator must report that rule.
func TestBrokenBundlesAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rule    string
		corrupt func(t *testing.T, root string)
	}{
		{"a bundle without a scorecard configuration", "layout", func(t *testing.T, root string) {
			remove(t, root, scorecardFile)
		}},
		{"a directory inside manifests/", "layout", func(t *testing.T, root string) {
			writeFile(t, root, ManifestsDir+"/nested/extra.yaml", "{}")
		}},
		{"a manifest file holding two objects", "manifest-file", func(t *testing.T, root string) {
			writeFile(t, root, servicePath, readFile(t, root, servicePath)+"---\n"+readFile(t, root, servicePath))
		}},
		{"a manifest file that is not a Kubernetes object", "manifest-file", func(t *testing.T, root string) {
			writeFile(t, root, ManifestsDir+"/notes.yaml", "just: notes\n")
		}},
		{"a manifest file that cannot be read", "manifest-file", func(t *testing.T, root string) {
			if err := os.Symlink("missing.yaml", filepath.Join(root, ManifestsDir, "dangling.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
		{"a ClusterServiceVersion whose spec is not an object", "manifest-file", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { c["spec"] = "install me" })
		}},
		{"a CustomResourceDefinition whose spec is not an object", "manifest-file", func(t *testing.T, root string) {
			editYAML(t, root, crdPath, func(o map[string]any) { o["spec"] = "servicemeshes" })
		}},
		{"a bundle with two ClusterServiceVersions", "csv-count", func(t *testing.T, root string) {
			writeFile(t, root, ManifestsDir+"/second.clusterserviceversion.yaml", readFile(t, root, csvFile))
		}},
		{"a bundle without a ClusterServiceVersion", "csv-count", func(t *testing.T, root string) {
			remove(t, root, csvFile)
		}},
		{"a Deployment shipped as a manifest", "kind", func(t *testing.T, root string) {
			writeFile(t, root, ManifestsDir+"/extra_apps_v1_deployment.yaml",
				"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: extra\n")
		}},
		{"the CSV deployment's service account shipped as a manifest", "service-account", func(t *testing.T, root string) {
			writeFile(t, root, ManifestsDir+"/sa_v1_serviceaccount.yaml",
				"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: meshwright-controller-manager\n")
		}},
		{"a mediatype other than registry+v1", "annotations", func(t *testing.T, root string) {
			editYAML(t, root, annotationsYML, func(o map[string]any) { set(t, o, "plain", "annotations", annotationMediatype) })
		}},
		{"an empty package annotation", "annotations", func(t *testing.T, root string) {
			editYAML(t, root, annotationsYML, func(o map[string]any) { set(t, o, "", "annotations", annotationPackage) })
		}},
		{"a package annotation that does not match the CSV", "annotations", func(t *testing.T, root string) {
			editYAML(t, root, annotationsYML, func(o map[string]any) { set(t, o, "other", "annotations", annotationPackage) })
		}},
		{"annotations.yaml that is not a map of strings", "annotations", func(t *testing.T, root string) {
			writeFile(t, root, annotationsYML, "annotations: [registry+v1]\n")
		}},
		{"a channel named outside the candidate/stable/fast convention", "channel-name", func(t *testing.T, root string) {
			editYAML(t, root, annotationsYML, func(o map[string]any) { set(t, o, "candidate,beta", "annotations", annotationChannels) })
		}},
		{"a default channel that is not one of the channels", "channel-name", func(t *testing.T, root string) {
			editYAML(t, root, annotationsYML, func(o map[string]any) { set(t, o, "fast", "annotations", annotationDefaultChannel) })
		}},
		{"a Dockerfile label that disagrees with annotations.yaml", "dockerfile", func(t *testing.T, root string) {
			writeFile(t, root, DockerfilePath, strings.Replace(readFile(t, root, DockerfilePath), "package.v1=meshwright", "package.v1=other", 1))
		}},
		{"a Dockerfile bundle label that annotations.yaml lacks", "dockerfile", func(t *testing.T, root string) {
			writeFile(t, root, DockerfilePath, readFile(t, root, DockerfilePath)+"LABEL operators.operatorframework.io.bundle.extra.v1=x\n")
		}},
		{"a bundle without its Dockerfile", "dockerfile", func(t *testing.T, root string) {
			remove(t, root, DockerfilePath)
		}},
		{"a CSV name that is not DNS-1123", "csv-name", func(t *testing.T, root string) {
			// Valid semver (build metadata) in the right form, so only the DNS-1123 check can object.
			editCSV(t, root, func(c map[string]any) { set(t, c, "meshwright.v0.1.0+build1", "metadata", "name") })
		}},
		{"a CSV name longer than 63 characters", "csv-name", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, "meshwright.v0.1.0-"+strings.Repeat("a", 50), "metadata", "name")
				set(t, c, "0.1.0-"+strings.Repeat("a", 50), "spec", "version")
			})
		}},
		{"a CSV name without the package.v<semver> form", "csv-name", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "meshwright-0.1.0", "metadata", "name") })
		}},
		{"a spec.version that differs from the name", "csv-version", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "0.2.0", "spec", "version") })
		}},
		{"a missing spec.version", "csv-version", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { delete(c["spec"].(map[string]any), "version") })
		}},
		{"a replaces that is not a CSV name", "csv-replaces", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "meshwright-old", "spec", "replaces") })
		}},
		{"alm-examples that is not a JSON array", "alm-examples", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, `{"kind": "ServiceMesh"}`, "metadata", "annotations", "alm-examples")
			})
		}},
		{"an example of a kind the CSV does not own", "alm-examples", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, `[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}]`, "metadata", "annotations", "alm-examples")
			})
		}},
		{"a CSV without alm-examples", "alm-examples", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				delete(get(t, c, "metadata", "annotations").(map[string]any), "alm-examples")
			})
		}},
		{"an owned CRD without an example", "alm-examples-coverage", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "[]", "metadata", "annotations", "alm-examples") })
		}},
		{"no install modes", "install-modes", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, []any{}, "spec", "installModes") })
		}},
		{"no supported install mode", "install-modes", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, []any{map[string]any{"type": "AllNamespaces", "supported": false}}, "spec", "installModes")
			})
		}},
		{"an install mode listed twice", "install-modes", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				mode := map[string]any{"type": "AllNamespaces", "supported": true}
				set(t, c, []any{mode, mode}, "spec", "installModes")
			})
		}},
		{"an install mode OLM does not know", "install-modes", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, []any{map[string]any{"type": "AllNamespaces", "supported": true}, map[string]any{"type": "Everywhere", "supported": false}},
					"spec", "installModes")
			})
		}},
		{"a minKubeVersion that is not strict semver", "min-kube-version", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "1.30", "spec", "minKubeVersion") })
		}},
		{"an empty displayName", "display-name", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "", "spec", "displayName") })
		}},
		{"an install strategy other than deployment", "install-strategy", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "helm", "spec", "install", "strategy") })
		}},
		{"an install strategy without deployments", "install-strategy", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, map[string]any{"deployments": []any{}}, "spec", "install", "spec")
			})
		}},
		{"a deployment without a name", "install-strategy", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				get(t, c, "spec", "install", "spec", "deployments").([]any)[0].(map[string]any)["name"] = ""
			})
		}},
		{"permissions for a service account no deployment uses", "install-strategy", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				get(t, c, "spec", "install", "spec", "permissions").([]any)[0].(map[string]any)["serviceAccountName"] = "someone-else"
			})
		}},
		{"an owned CRD version the CRD file does not serve", "owned-crds", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { firstOwnedCRD(t, c)["version"] = "v1" })
		}},
		{"a CRD file the CSV does not own", "owned-crds", func(t *testing.T, root string) {
			writeFile(t, root, ManifestsDir+"/other.example.com_servicemeshes.yaml", readFile(t, root, crdPath))
			editYAML(t, root, ManifestsDir+"/other.example.com_servicemeshes.yaml", func(o map[string]any) {
				set(t, o, "servicemeshes.other.example.com", "metadata", "name")
				set(t, o, "other.example.com", "spec", "group")
			})
		}},
		{"an empty provider name", "provider", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "", "spec", "provider", "name") })
		}},
		{"a maintainer with an invalid email", "maintainers", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, []any{map[string]any{"name": "Someone", "email": "not-an-email"}}, "spec", "maintainers")
			})
		}},
		{"a link with an invalid URL", "links", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, []any{map[string]any{"name": "Docs", "url": "docs page"}}, "spec", "links")
			})
		}},
		{"two icons", "icon", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				icons := get(t, c, "spec", "icon").([]any)
				set(t, c, append(icons, icons[0]), "spec", "icon")
			})
		}},
		{"an icon that is not base64", "icon", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				get(t, c, "spec", "icon").([]any)[0].(map[string]any)["base64data"] = "<svg/>"
			})
		}},
		{"an icon of a media type consoles do not show", "icon", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				get(t, c, "spec", "icon").([]any)[0].(map[string]any)["mediatype"] = "image/bmp"
			})
		}},
		{"a capability level that does not exist", "capabilities", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "Seamless", "metadata", "annotations", "capabilities") })
		}},
		{"a category outside the standard sixteen", "categories", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { set(t, c, "Networking, Meshes", "metadata", "annotations", "categories") })
		}},
		{"a related image that is not an image reference", "related-images", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				set(t, c, []any{map[string]any{"name": "bad", "image": "Docker.io/UPPER:bad tag"}}, "spec", "relatedImages")
			})
		}},
		{"olm.skipRange spelled in the wrong case", "annotation-case", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				annotations := get(t, c, "metadata", "annotations").(map[string]any)
				annotations["olm.skiprange"] = annotations["olm.skipRange"]
				delete(annotations, "olm.skipRange")
			})
		}},
		{"a bundle whose compressed size exceeds 1 MiB", "bundle-size", func(t *testing.T, root string) {
			noise := make([]byte, 1<<20)
			rand.New(rand.NewSource(1)).Read(noise)
			writeFile(t, root, ManifestsDir+"/noise_v1_configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: noise\n"+
				"binaryData:\n  noise: "+base64.StdEncoding.EncodeToString(noise)+"\n")
		}},
		{"a container without a cpu request", "resource-requests", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				delete(get(t, firstDeploymentContainer(t, c), "resources", "requests").(map[string]any), "cpu")
			})
		}},
		{"an owned CRD without a description", "crd-descriptions", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) { firstOwnedCRD(t, c)["description"] = "" })
		}},
		{"a CRD schema field without a description", "crd-descriptions", func(t *testing.T, root string) {
			editYAML(t, root, crdPath, func(o map[string]any) {
				version := get(t, o, "spec", "versions").([]any)[0].(map[string]any)
				spec := get(t, version, "schema", "openAPIV3Schema", "properties", "spec", "properties", "version").(map[string]any)
				delete(spec, "description")
			})
		}},
		{"a CRD schema without a top-level description", "crd-descriptions", func(t *testing.T, root string) {
			editYAML(t, root, crdPath, func(o map[string]any) {
				version := get(t, o, "spec", "versions").([]any)[0].(map[string]any)
				delete(get(t, version, "schema", "openAPIV3Schema").(map[string]any), "description")
			})
		}},
		{"a CRD version without a schema", "crd-descriptions", func(t *testing.T, root string) {
			editYAML(t, root, crdPath, func(o map[string]any) {
				delete(get(t, o, "spec", "versions").([]any)[0].(map[string]any), "schema")
			})
		}},
		{"permission to create CRDs without a justification", "crd-permission", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				description := get(t, c, "spec", "description").(string)
				set(t, c, strings.ReplaceAll(description, CRDCreationMarker, "CRDs"), "spec", "description")
			})
		}},
		{"a verb wildcard the description does not explain", "rbac-wildcards", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				description := get(t, c, "spec", "description").(string)
				set(t, c, strings.ReplaceAll(description, "`networking.k8s.io/ingresses/status`", "Ingress status"), "spec", "description")
			})
		}},
		{"a resource wildcard the description does not explain", "rbac-wildcards", func(t *testing.T, root string) {
			editCSV(t, root, func(c map[string]any) {
				description := get(t, c, "spec", "description").(string)
				set(t, c, strings.ReplaceAll(description, "`rbac.istio.io`", "Istio RBAC"), "spec", "description")
			})
		}},
		{"a manifest using an API Kubernetes removed", "removed-api", func(t *testing.T, root string) {
			writeFile(t, root, ManifestsDir+"/pdb_policy_v1beta1_poddisruptionbudget.yaml",
				"apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: pdb\nspec:\n  minAvailable: 1\n")
		}},
		{"a CRD the API server would refuse", "crd-validation", func(t *testing.T, root string) {
			editYAML(t, root, crdPath, func(o map[string]any) { set(t, o, "Galactic", "spec", "scope") })
		}},
	} {
		t.Run(tc.name+" is rejected for "+tc.rule, func(t *testing.T) {
			root := goodRoot(t)
			tc.corrupt(t, root)
			problems := validateRoot(root)
			if !hasRule(problems, tc.rule) {
				t.Errorf("want a %q problem, got %v", tc.rule, problems)
			}
		})
	}
}

func TestBrokenCatalogsAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rule    string
		corrupt func(catalog string) string
	}{
		{"a catalog that is not YAML", "fbc-parse", func(string) string { return "schema: [unclosed\n" }},
		{"a catalog document that is not an object", "fbc-parse", func(c string) string { return c + "---\n- a list\n" }},
		{"a catalog blob of an unknown schema", "fbc-parse", func(c string) string { return c + "---\nschema: olm.unknown\n" }},
		{"a catalog blob whose fields have the wrong types", "fbc-parse", func(c string) string {
			return c + "---\nschema: olm.channel\nname: fast\npackage: meshwright\nentries: meshwright.v0.1.0\n"
		}},
		{"a catalog with two packages", "fbc-package", func(c string) string {
			return c + "---\nschema: olm.package\nname: meshwright\ndefaultChannel: candidate\n"
		}},
		{"a catalog without its package", "fbc-package", func(c string) string {
			return strings.Replace(c, "schema: olm.package", "schema: olm.packagex", 1)
		}},
		{"a package of another name", "fbc-package", func(c string) string {
			return strings.Replace(c, "name: meshwright\nschema: olm.package", "name: other\nschema: olm.package", 1)
		}},
		{"a default channel without an olm.channel", "fbc-package", func(c string) string {
			return strings.Replace(c, "defaultChannel: candidate", "defaultChannel: fast", 1)
		}},
		{"a channel entry naming a bundle the catalog lacks", "fbc-channel", func(c string) string {
			return strings.Replace(c, "- name: meshwright.v0.1.0", "- name: meshwright.v9.9.9", 1)
		}},
		{"a channel of another package", "fbc-channel", func(c string) string {
			return strings.Replace(c, "package: meshwright\nschema: olm.channel", "package: other\nschema: olm.channel", 1)
		}},
		{"a channel without entries", "fbc-channel", func(c string) string {
			return strings.Replace(c, "entries:\n- name: meshwright.v0.1.0\n  skipRange: <0.1.0\nname: stable", "entries: []\nname: stable", 1)
		}},
		{"a bundle without an image", "fbc-bundle", func(c string) string {
			return strings.Replace(c, "image: meshwright/meshwright-bundle:v0.1.0\nname:", "image: \"\"\nname:", 1)
		}},
		{"a bundle whose olm.package property names another package", "fbc-bundle", func(c string) string {
			return strings.Replace(c, "packageName: meshwright", "packageName: other", 1)
		}},
		{"a bundle of another package", "fbc-bundle", func(c string) string {
			// The olm.package property agrees with the bundle, so only the package check can object.
			c = strings.Replace(c, "package: meshwright\nproperties:", "package: other\nproperties:", 1)
			return strings.Replace(c, "packageName: meshwright", "packageName: other", 1)
		}},
		{"a bundle without an olm.package property", "fbc-bundle", func(c string) string {
			return strings.Replace(c, "- type: olm.package\n", "- type: olm.other\n", 1)
		}},
	} {
		t.Run(tc.name+" is rejected for "+tc.rule, func(t *testing.T) {
			root := goodRoot(t)
			broken := tc.corrupt(readFile(t, root, CatalogFile))
			if broken == readFile(t, root, CatalogFile) {
				t.Fatal("the mutation changed nothing; the fixture catalog no longer has the text it replaces")
			}
			writeFile(t, root, CatalogFile, broken)
			if problems := ValidateCatalog(filepath.Join(root, CatalogFile)); !hasRule(problems, tc.rule) {
				t.Errorf("want a %q problem, got %v", tc.rule, problems)
			}
		})
	}
}

func TestMissingCatalogIsRejected(t *testing.T) {
	if problems := ValidateCatalog(filepath.Join(t.TempDir(), "catalog.yaml")); !hasRule(problems, "fbc-parse") {
		t.Errorf("want a fbc-parse problem, got %v", problems)
	}
}

func remove(t *testing.T, root, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(name))); err != nil {
		t.Fatal(err)
	}
}
