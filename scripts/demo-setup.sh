#!/usr/bin/env bash
# First-run demo for `make run`: a ledger anchored by two witnesses and a test
# TSA on loopback, an account of every role, evidence in each state (sealed,
# certified, revoked), a sample package and trust file. Tokens go to
# HOME/demo-tokens.txt (mode 0600). See scripts/demo-ledger.py.
set -euo pipefail
exec "$(dirname "$0")/../.venv/bin/python" "$(dirname "$0")/demo-ledger.py" setup "$1"
