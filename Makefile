# Meshwright — conventional kubebuilder targets plus `demo` (the embedded default) and `cluster` (a local kwok cluster).

# VERSION is the operator release: the CSV is meshwright.v$(VERSION) and the images are tagged v$(VERSION).
VERSION ?= 0.1.0
IMAGE_TAG_BASE ?= meshwright/meshwright
IMG ?= $(IMAGE_TAG_BASE):v$(VERSION)
BUNDLE_IMG ?= $(IMAGE_TAG_BASE)-bundle:v$(VERSION)
# OLM channels the bundle is published in (comma-separated) and the default one.
CHANNELS ?= candidate
DEFAULT_CHANNEL ?= candidate
# The CSV this version upgrades from (e.g. meshwright.v0.0.9); empty for the first release.
REPLACES ?=
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
manifests: $(CONTROLLER_GEN) ## Generate the CRD and RBAC manifests.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases

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

.PHONY: bench
bench: ## Run the benchmarks (install latency, API requests per reconcile, CPU and memory) and print the figures.
	hack/bench.sh

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

##@ OLM

.PHONY: bundle
bundle: manifests | $(LOCALBIN) ## Generate the OLM bundle (bundle/, bundle.Dockerfile) and catalog (catalog/) from config/, validated.
	go build -o $(LOCALBIN)/bundle ./hack/bundle
	$(LOCALBIN)/bundle --version "$(VERSION)" --image "$(IMG)" --bundle-image "$(BUNDLE_IMG)" \
		--channels "$(CHANNELS)" --default-channel "$(DEFAULT_CHANNEL)" --replaces "$(REPLACES)"

##@ Deployment

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
undeploy: $(KUSTOMIZE) ## Remove the operator from the current cluster.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found -f -

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $@

$(KUSTOMIZE): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(LOCALBIN)/kustomize $@

.PHONY: controller-gen kustomize
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
kustomize: $(KUSTOMIZE) ## Install kustomize into bin/.
