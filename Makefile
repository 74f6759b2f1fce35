# The two commands of docs/interface.md §1, plus benchmarks. Everything installs into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv bench clean browser

# Browser tests drive Debian's headless Chromium through its chromedriver (tests/browser.py).
BROWSER := /usr/bin/chromium /usr/bin/chromedriver

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/wbs run

# Ops tools for the manifest and alert-rule tests: kubectl (built-in kustomize) and promtool from
# Debian; KEDA's CRD schemas beside the venv (deploy/kubernetes/schema-requirements.txt).
OPS_TOOLS := /usr/bin/kubectl /usr/bin/promtool
KEDA_MODELS := $(VENV)/keda-models/.installed

# One package per tool: a machine may already have kubectl from another package (a cloud SDK's),
# which Debian's kubernetes-client would conflict with.
/usr/bin/kubectl: PACKAGE = kubernetes-client
/usr/bin/promtool: PACKAGE = prometheus
$(OPS_TOOLS):
	command -v $(notdir $@) >/dev/null || apt-get install -y --no-install-recommends $(PACKAGE) \
	  || (apt-get update && apt-get install -y --no-install-recommends $(PACKAGE))

$(KEDA_MODELS): deploy/kubernetes/schema-requirements.txt $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --upgrade --target $(VENV)/keda-models -r $<
	@touch $@

$(BROWSER):
	apt-get install -y --no-install-recommends chromium chromium-driver \
	  || (apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver)

browser: $(BROWSER)

# HYPOTHESIS_NO_PLUGINS: hypothesis would import trio (via Selenium), which fails on eventlet's sockets.
test: $(STAMP) $(BROWSER) $(OPS_TOOLS) $(KEDA_MODELS)
	HYPOTHESIS_NO_PLUGINS=1 $(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var test-output bench-output
