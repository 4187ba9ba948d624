# Evidence ledger: `make run` starts a demo service, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= ./var
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest install system chromium bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the project drives or checks its outputs with: chromium
# (online capture, page tests), ffmpeg (recorded capture), poppler-utils,
# qpdf, zbar-tools and libnss3-tools (PDF certificate checks), fonts-noto-cjk
# (Chinese text in pages and PDFs). Installed once with apt-get (browser
# downloads are impossible here); a no-op when all are present. sudo only
# when not root.
DEBS ?= chromium ffmpeg poppler-utils qpdf zbar-tools libnss3-tools fonts-noto-cjk
CHROMIUM ?= /usr/bin/chromium
system:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -q $$missing || \
		{ $$SUDO apt-get update -q && $$SUDO apt-get install -y -q $$missing; }; \
	fi

# Kept for scripts that name it.
chromium: system

run: $(STAMP) system
	@if [ ! -f $(HOME_DIR)/config.json ]; then scripts/demo-setup.sh $(HOME_DIR); fi
	$(BIN)/python scripts/demo-ledger.py run $(HOME_DIR) --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check ledger api verifier tests bench
	$(BIN)/ruff format --check ledger api verifier tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
