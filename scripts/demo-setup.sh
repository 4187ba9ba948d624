#!/usr/bin/env bash
# First-run demo for `make run`: a ledger with a rights holder, a notary, one
# deposit and one certificate. Tokens go to HOME/demo-tokens.txt (mode 0600).
set -euo pipefail
home="$1"
el() { "$(dirname "$0")/../.venv/bin/evidence-ledger" --home "$home" "$@"; }

el init --origin demo.evidence-ledger.local/log >/dev/null
umask 077
rh_token=$(el account create --role rights_holder --name demo-rights-holder | tail -n 1)
nt_token=$(el account create --role notary --name demo-notary | tail -n 1)
printf 'rights_holder %s\nnotary %s\n' "$rh_token" "$nt_token" > "$home/demo-tokens.txt"
receipt=$(printf 'evidence-ledger demo' > "$home/demo-evidence.txt" && el deposit "$home/demo-evidence.txt" --title "Demo evidence 演示证据" --owner demo-rights-holder)
evidence_id=$(printf '%s' "$receipt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["evidence_id"])')
el seal >/dev/null
cert_id=$(el certificate issue "$evidence_id" --notary demo-notary | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificate_id"])')
el certificate package "$cert_id" "$home/demo-package.zip" >/dev/null
el trust export > "$home/trust.json"
cat <<MSG
Demo ledger ready in $home:
  evidence $evidence_id, certificate $cert_id
  package  $home/demo-package.zip  (check it: .venv/bin/evidence-verify package $home/demo-package.zip --trust $home/trust.json)
  tokens   $home/demo-tokens.txt   (curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8000/v1/evidence)
MSG
