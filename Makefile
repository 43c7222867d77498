# Meshwright — conventional kubebuilder targets plus `demo` (the embedded default) and `cluster` (a local kwok cluster).

# VERSION is the operator release: the CSV is meshwright.v$(VERSION) and the images are tagged v$(VERSION).
VERSION ?= 0.1.0
IMAGE_TAG_BASE ?= meshwright/meshwright
IMG ?= $(IMAGE_TAG_BASE):v$(VERSION)
BUNDLE_IMG ?= $(IMAGE_TAG_BASE)-bundle:v$(VERSION)
CATALOG_IMG ?= $(IMAGE_TAG_BASE)-catalog:v$(VERSION)
# OLM channels the bundle is published in (comma-separated) and the default one.
CHANNELS ?= candidate
DEFAULT_CHANNEL ?= candidate
# The CSV this version upgrades from (e.g. meshwright.v0.0.9); empty for the first release.
REPLACES ?=
# Images are built without Docker (hack/image) into OCI image layouts under bin/; the *-push targets need a reference.
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_SOURCE ?= https://github.com/meshwright/meshwright
# given(VAR) is VAR's value when it came from the command line or the environment, empty when only this Makefile
# set it: a push to a default reference would send the image to Docker Hub's meshwright/ namespace.
given = $(if $(filter file default undefined,$(origin $(1))),,$($(1)))
IMAGE_TOOL ?= $(LOCALBIN)/image-tool
OCI_LABELS = --label org.opencontainers.image.source=$(IMAGE_SOURCE) --label org.opencontainers.image.version=$(VERSION) \
	$(if $(REVISION),--label org.opencontainers.image.revision=$(REVISION))
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
# Kubernetes binaries (kube-apiserver, etcd, kwok, ...) are built from source once per machine into a cache outside
# the repository; hack/k8s-binaries.sh prints the directory.
K8S_BIN = $(shell hack/k8s-binaries.sh | tail -n1)

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) gatewayapi-crds ## Generate the CRD and RBAC manifests (the CRD names in the RBAC come from the version catalog).
	go run ./hack/crdrbac controllers/zz_generated.crdrbac.go
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: gatewayapi-crds
gatewayapi-crds: ## Generate the Gateway API standard-channel CRDs (internal/gatewayapi/crds) from go.mod's sigs.k8s.io/gateway-api Go types.
	go run ./hack/gatewayapi -out internal/gatewayapi/crds

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: test
test: vet $(CONTROLLER_GEN) ## Build the Kubernetes binaries if needed, then run every test against a real API server and a kwok cluster.
	hack/test.sh

.PHONY: test-chaos
test-chaos: ## Chaos e2e: kill -9 the operator at every mutating request 1..CHAOS_POINTS (default 20) of each scenario, and leader failover.
	MESHWRIGHT_CHAOS_POINTS=$(or $(CHAOS_POINTS),20) E2E_TIMEOUT=3h hack/e2e.sh -run 'TestChaos|TestLeaderFailover'

.PHONY: fuzz
fuzz: ## Fuzz values merging and rendering for FUZZTIME each (default 60s); `make test` runs their seed corpus.
	go test ./internal/render -run '^$$' -fuzz '^FuzzValues$$' -fuzztime $(or $(FUZZTIME),60s)
	go test ./internal/render -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(or $(FUZZTIME),60s)

.PHONY: bench
bench: ## Run the benchmarks (install latency, API requests per reconcile, CPU and memory) and print the figures.
	hack/bench.sh

.PHONY: argocd
argocd: ## Capture config/argocd/testdata from the operator (envtest), regenerate argocd-cm.yaml from health.lua, test the script.
	KUBEBUILDER_ASSETS=$(K8S_BIN) go test ./controllers -count=1 -run TestArgoCDHealthTestdata -update-argocd
	go test ./internal/argocd -count=1 -run TestArgoCDConfigMap -update
	go test ./internal/argocd -count=1

##@ Local cluster

.PHONY: binaries
binaries: ## Build (once per machine) kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok.
	hack/k8s-binaries.sh

.PHONY: cluster
cluster: ## Start a local kwok cluster (kubeconfig in bin/kubeconfig).
	hack/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Delete the local kwok cluster.
	hack/cluster.sh down

.PHONY: demo
demo: ## The embedded default: local cluster, CRDs, operator, sample ServiceMesh, its status printed.
	hack/demo.sh

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary.
	go build -o bin/manager .

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the current kubeconfig.
	go run ./main.go

.PHONY: docker-build
docker-build: image-tool ## Build the manager image (linux/amd64, linux/arm64) into the OCI layout bin/image, without Docker.
	@$(IMAGE_TOOL) manager --out bin/image --version $(VERSION) --revision "$(REVISION)" --source $(IMAGE_SOURCE)

.PHONY: bundle-build
bundle-build: image-tool ## Build the OLM bundle image (bundle/manifests, bundle/metadata, labels from annotations.yaml) into bin/bundle-image.
	@$(IMAGE_TOOL) files --out bin/bundle-image --tag $(VERSION) \
		--labels-from bundle/metadata/annotations.yaml $(OCI_LABELS) \
		--dir bundle/manifests:/manifests --dir bundle/metadata:/metadata \
		$(if $(wildcard bundle/tests/scorecard),--dir bundle/tests/scorecard:/tests/scorecard)

.PHONY: catalog-build
catalog-build: image-tool ## Build the file-based catalog image (catalog/ as /configs) into bin/catalog-image.
	@$(IMAGE_TOOL) files --out bin/catalog-image --tag $(VERSION) $(OCI_LABELS) \
		--label operators.operatorframework.io.index.configs.v1=/configs --dir catalog:/configs

##@ OLM

.PHONY: bundle
bundle: manifests | $(LOCALBIN) ## Generate the OLM bundle (bundle/, bundle.Dockerfile) and catalog (catalog/) from config/, validated.
	go build -o $(LOCALBIN)/bundle ./hack/bundle
	$(LOCALBIN)/bundle --version "$(VERSION)" --image "$(IMG)" --bundle-image "$(BUNDLE_IMG)" \
		--channels "$(CHANNELS)" --default-channel "$(DEFAULT_CHANNEL)" --replaces "$(REPLACES)"

##@ Deployment

.PHONY: docker-push
docker-push: image-tool ## Push bin/image to IMG, which must be given: make docker-push IMG=registry.example.com/meshwright:v0.1.0
	@$(IMAGE_TOOL) push --layout bin/image --var IMG --image "$(call given,IMG)"

.PHONY: bundle-push
bundle-push: image-tool ## Push bin/bundle-image to BUNDLE_IMG (required).
	@$(IMAGE_TOOL) push --layout bin/bundle-image --var BUNDLE_IMG --image "$(call given,BUNDLE_IMG)"

.PHONY: catalog-push
catalog-push: image-tool ## Push bin/catalog-image to CATALOG_IMG (required).
	@$(IMAGE_TOOL) push --layout bin/catalog-image --var CATALOG_IMG --image "$(call given,CATALOG_IMG)"

.PHONY: install
install: manifests $(KUSTOMIZE) ## Install the CRDs into the current cluster.
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) ## Remove the CRDs from the current cluster.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) ## Deploy the operator into the current cluster.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) ## Remove the operator from the current cluster; the CRD stays while any ServiceMesh exists.
	KUSTOMIZE=$(KUSTOMIZE) hack/undeploy.sh

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $@

$(KUSTOMIZE): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(LOCALBIN)/kustomize $@

.PHONY: image-tool
image-tool: | $(LOCALBIN) ## Build hack/image (the image builder behind docker-*, bundle-* and catalog-*) into bin/.
	@go build -o $(IMAGE_TOOL) ./hack/image

.PHONY: controller-gen kustomize
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
kustomize: $(KUSTOMIZE) ## Install kustomize into bin/.
