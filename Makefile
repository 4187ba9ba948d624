# Evidence ledger: `make run` starts a demo service, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= ./var
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest install chromium system-packages bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the service and the tests use: chromium for online capture
# (browser downloads are impossible here); fonts-noto-cjk for PDF certificates;
# poppler-utils, qpdf, zbar-tools and libnss3-tools to check those PDFs with
# other people's tools. Installed once; a no-op when all are present. sudo
# only when not root.
CHROMIUM ?= /usr/bin/chromium
SYSTEM_PACKAGES := chromium fonts-noto-cjk poppler-utils qpdf zbar-tools libnss3-tools
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -q $$missing || \
		{ $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; }; \
	fi

chromium: system-packages

run: $(STAMP) system-packages
	@if [ ! -f $(HOME_DIR)/config.json ]; then scripts/demo-setup.sh $(HOME_DIR); fi
	$(BIN)/evidence-ledger --home $(HOME_DIR) serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check ledger api verifier tests bench
	$(BIN)/ruff format --check ledger api verifier tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-packages
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
