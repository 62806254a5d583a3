# stampede: a chaos and concurrency test suite for Kubernetes deployments.
# Every target is a one-liner that calls a script or `go run`; `make help` lists them.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

ARTIFACTS ?= $(CURDIR)/_artifacts
SEED ?=
LABELS ?=
ARGS ?=
# N is the number of runs of a soak.
N ?= 20
# FILE is node-image-save's and node-image-load's tarball.
FILE ?=
# CLUSTER names the kind cluster (-e2e.cluster-name; cluster-up/smoke/cluster-down's --name).
CLUSTER ?=
# TARGET is the target file the suite judges, or a directory holding target.yaml (-e2e.target);
# scripts/e2e.sh defaults it to targets/tokensvc, the bundled token service.
TARGET ?=
export ARTIFACTS SEED LABELS CLUSTER TARGET

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: test
test: ## Unit and integration tests, no cluster (installs PostgreSQL binaries when missing).
	@scripts/test.sh

.PHONY: e2e
e2e: ## The whole e2e run (TARGET=dir|file, default targets/tokensvc, validated first): host setup, node image, images, a fresh kind cluster of its own, specs, cleanup.
	@scripts/e2e.sh kind $(ARGS)

.PHONY: e2e-reuse
e2e-reuse: ## The e2e specs on a kept kind cluster (CLUSTER=, default stampede; created when absent; TARGET= as for e2e): the fast inner loop.
	@scripts/e2e.sh reuse $(ARGS)

.PHONY: e2e-chaos
e2e-chaos: ## The chaos specs (every fault under bursts, the canary under db-latency) on a fresh kind cluster; LABELS narrows.
	@LABELS='chaos$(if $(LABELS), && ($(LABELS)))' scripts/e2e.sh kind --timeout 2h $(ARGS)

.PHONY: selftest
selftest: ## The suite's kill ratio: every broken build of service/mutants must be caught, the control must pass (table in selftest.md).
	@LABELS='selftest$(if $(LABELS), && ($(LABELS)))' scripts/e2e.sh kind --timeout 2h $(ARGS)

.PHONY: nightly
nightly: ## Every spec, the chaos specs and the self-test included, on a fresh kind cluster.
	@LABELS=all scripts/e2e.sh kind --timeout 4h $(ARGS)

.PHONY: soak
soak: ## The registration specs N times (default 20) on one kept cluster (CLUSTER=, default stampede-soak), fresh seeds: flakes, false alarms, the canary's detection rate with its 95% interval (soak.md).
	@N=$(N) scripts/soak.sh $(ARGS)

.PHONY: recheck
recheck: ## Re-judge a run's saved artifacts offline and compare with its verdicts (DIR=, default the latest run).
	@go run ./e2e/cmd/stampede check $(or $(DIR),$(ARTIFACTS)/latest)

.PHONY: report
report: ## Render a run's report.html again from its artifacts (DIR=, default the latest run).
	@go run ./e2e/cmd/stampede report $(or $(DIR),$(ARTIFACTS)/latest)

.PHONY: trend
trend: ## One page of many runs over time, trend.html: verdicts, canary detection with its 95% interval, recovery, p50/p99, coverage, unknown outcomes (DIRS=, default ARTIFACTS; OUT=, default DIRS' first/trend.html).
	@go run ./e2e/cmd/stampede trend $(if $(OUT),-o $(OUT)) $(or $(DIRS),$(ARTIFACTS))

.PHONY: pre-release
pre-release: ## Verify a release on an existing cluster: KUBECONFIG= CONTEXT= IMAGE= (or TOKENSVC_IMAGE=) POSTGRES_IMAGE= [TARGET=dir|file TOXIPROXY_IMAGE= MANIFESTS=DIR RUN_ROLE= DB_STORAGE= DNS=].
	@scripts/pre-release.sh $(ARGS)

.PHONY: target-validate
target-validate: ## Check a target file (TARGET=dir|file, default targets/tokensvc): its problems one a line with file:line:col, or that it is valid.
	@go run ./e2e/cmd/stampede target validate $(or $(TARGET),targets/tokensvc)

.PHONY: target-init
target-init: ## Write a commented skeleton target file to FILE= (default target.yaml), never over an existing file.
	@go run ./e2e/cmd/stampede target init $(FILE)

.PHONY: rbac-proof
rbac-proof: ## Prove on a kind cluster of its own that pre-release needs only manifests/rbac and leaves nothing (CLUSTER= LABELS= REMOVE=).
	@scripts/rbac-proof.sh

.PHONY: host-setup
host-setup: ## Docker engine (the running one, or stampede's own), egress guard for stampede's network; undone by host-undo.
	@scripts/host-setup.sh

.PHONY: host-undo
host-undo: ## Take back everything host-setup changed and report it (PURGE=true also deletes stampede's engine data).
	@scripts/host-undo.sh $(if $(filter true,$(PURGE)),--purge)

.PHONY: node-image
node-image: host-setup ## The kind node image (stock online, built here offline).
	@scripts/node-image.sh

.PHONY: node-image-save
node-image-save: host-setup ## Save the node image (built when missing) to FILE= (gzip tarball) and FILE.sha256, for a CI cache or an offline colleague.
	@scripts/node-image-archive.sh save "$(FILE)"

.PHONY: node-image-load
node-image-load: host-setup ## Load a node image saved by node-image-save from FILE= (its FILE.sha256 checked first); make e2e then skips the build.
	@scripts/node-image-archive.sh load "$(FILE)"

.PHONY: bench-e2e
bench-e2e: ## Time make e2e's stages: a cold run (fresh Go caches, cache dir and stampede images; COLD=false skips it), a warm one and a reuse one (WARM=false skips those), then the stage tables.
	@scripts/bench-e2e.sh $(ARGS)

.PHONY: images
images: host-setup ## The images the suite deploys: token service, PostgreSQL, toxiproxy.
	@scripts/build-image.sh all

.PHONY: image
image: host-setup ## The token service image.
	@scripts/build-image.sh tokensvc

.PHONY: cluster-up
cluster-up: node-image ## Create (or reuse) the kind cluster "stampede" (or CLUSTER=) from kind-config.yaml.
	@scripts/cluster.sh up $(if $(CLUSTER),--name $(CLUSTER))

.PHONY: smoke
smoke: ## Check the cluster: system pods Ready, a Service answers from several pods and every worker.
	@scripts/cluster.sh smoke $(if $(CLUSTER),--name $(CLUSTER))

.PHONY: cluster-down
cluster-down: ## Delete the kind cluster "stampede" (or CLUSTER=).
	@scripts/cluster.sh down $(if $(CLUSTER),--name $(CLUSTER))

.PHONY: gc
gc: ## Remove what dead runs left: their clusters, paused nodes, lock files (never a cluster stampede did not create).
	@scripts/cluster.sh gc

.PHONY: bench
bench: ## Registrations/s per create strategy on a local PostgreSQL; the checker judging 1 M requests, held and read from ops.jsonl (wall, CPU-s, peak RSS).
	@scripts/ensure-postgres.sh && go test -run '^$$' -bench BenchmarkRegister -benchtime 2s ./service/internal/httpapi && go test -run '^$$' -bench 'BenchmarkCheck(File)?1M$$' -benchtime 1x ./e2e/check

.PHONY: fuzz
fuzz: ## Fuzz the request decoder for a minute.
	@go test -run '^$$' -fuzz FuzzDecodeRequest -fuzztime 1m ./service/internal/httpapi
