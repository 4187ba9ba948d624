"""A report that cannot be forged: depositor text is shown escaped everywhere.

A real ledger issues a certificate for a file whose title carries a newline
followed by a forged check line and a forged verdict, and whose file name
carries a right-to-left override. The package is then made INVALID (its
README edited); the report must hold exactly one verdict line, the true one,
and show every invisible character as a visible escape. Member names are
made safe, and packages made before that rule still verify.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "certificates"))
from cert_helpers import canonical_zip, package_members

from api.web.render import environment
from ledger.accounts import create_account
from ledger.certificates import issue_certificate, package_certificate, trust_export
from ledger.core import Ledger
from ledger.services import OPERATOR, Services
from verifier.certificate import Certificate, EvidenceFacts
from verifier.cli import main
from verifier.display import escape_json, escape_text
from verifier.package import evidence_member_name, readme_text, verify_package
from verifier.trust import load_trust

FORGED_TITLE = "合同\n 11. notary signature  PASSED: ok\nVALID\u202e\u200b\x85"
FILE_NAME = "invoice\u202efdp.exe"
INVISIBLE = ("\u202e", "\u200b", "\x85")


@dataclass
class Forged:
    package: Path
    trust: Path
    cert: Certificate


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> Forged:
    root = tmp_path_factory.mktemp("forged")
    with Ledger.init(root / "home", origin="display.test/log") as ledger:
        create_account(ledger, "notary", "N. Otary")
        f = root / "upload.bin"
        f.write_bytes(b"%PDF-1.4 not really\n" * 10)
        with f.open("rb") as fh:
            receipt = Services(ledger).deposits.deposit_file(
                OPERATOR, fh, title=FORGED_TITLE, file_name=FILE_NAME
            )
        ledger.seal()
        data = issue_certificate(ledger, receipt.evidence_id, "N. Otary").data
        ledger.seal()
        cert = Certificate.from_json(data)
        package = package_certificate(ledger, cert.certificate_id, root / "package.zip")
        trust = root / "trust.json"
        trust.write_text(json.dumps(trust_export(ledger), ensure_ascii=False), "utf-8")
    return Forged(package, trust, cert)


def test_member_names_are_made_safe(forged: Forged) -> None:
    names = [n for n, _ in package_members(forged.package.read_bytes())]
    assert "evidence/invoice_fdp.exe" in names
    assert not any(c in n for n in names for c in INVISIBLE)


@pytest.mark.parametrize(
    ("file_name", "member"),
    [
        ("invoice\u202efdp.exe", "evidence/invoice_fdp.exe"),
        ("a\u200bb\u200d\ufeffc.txt", "evidence/a_b__c.txt"),
        ("c1\x85\x9b.txt", "evidence/c1__.txt"),
        ("dir/sub\\name.txt", "evidence/name.txt"),
        ("fake\u2215slash\uff0fname", "evidence/fake_slash_name"),
        ("isolate\u2066x\u2069.pdf", "evidence/isolate_x_.pdf"),
        ("合同 v2.pdf", "evidence/合同 v2.pdf"),
    ],
)
def test_member_name_rules(file_name: str, member: str) -> None:
    facts = EvidenceFacts(
        evidence_id="e",
        deposit_no="EL-1",
        deposited_at="2026-01-01T00:00:00.000000Z",
        kind="file",
        sha256="ab" * 32,
        sm3=None,
        size=1,
        media_type=None,
        title=None,
        file_name=file_name,
        depositor=None,
    )
    assert evidence_member_name(facts) == member


def test_a_forged_title_cannot_forge_the_verdict(
    forged: Forged, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = package_members(forged.package.read_bytes())
    edited = [(n, d + b"\n" if n == "README.txt" else d) for n, d in members]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(canonical_zip(edited, forged.cert.issued_at))
    code = main(["package", str(bad), "--trust", str(forged.trust), "--lang", "en"])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    verdicts = [ln for ln in lines if re.match(r"^(VALID|INVALID)\b", ln.strip())]
    assert verdicts == [lines[-1]] and lines[-1].startswith("INVALID (1 of ")
    numbered = [ln for ln in lines if re.match(r"^\s*\d+\. ", ln)]
    assert [int(ln.split(".")[0]) for ln in numbered] == list(range(1, len(numbered) + 1))
    assert not any(c in out for c in INVISIBLE)
    assert "title: 合同\\n 11. notary signature  PASSED: ok\\nVALID\\u202e\\u200b\\x85" in out
    # The JSON report keeps the values (the same JSON) without raw invisible characters.
    code = main(["package", str(bad), "--trust", str(forged.trust), "--json"])
    text = capsys.readouterr().out
    assert code == 1 and not any(c in text for c in INVISIBLE)
    assert json.loads(text)["facts"]["title"] == FORGED_TITLE


def test_the_valid_report_shows_escapes_too(
    forged: Forged, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["package", str(forged.package), "--trust", str(forged.trust), "--lang", "zh"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[-1] == "结论：有效"
    assert sum(1 for ln in out.splitlines() if ln.startswith("结论")) == 1
    assert "\\u202e" in out and not any(c in out for c in INVISIBLE)


def test_packages_made_before_the_rule_still_verify(forged: Forged, tmp_path: Path) -> None:
    """An older producer named the member with the bidi override kept and wrote
    the README with controls as spaces: such a package is still valid."""
    ev = forged.cert.evidence
    old_name = evidence_member_name(ev, legacy=True)
    assert old_name == "evidence/" + FILE_NAME
    old = []
    for name, data in package_members(forged.package.read_bytes()):
        if name == "README.txt":
            data = readme_text(forged.cert, pdf=True, legacy=True).encode()
        elif name.startswith("evidence/"):
            name = old_name
        old.append((name, data))
    path = tmp_path / "old.zip"
    path.write_bytes(canonical_zip(old, forged.cert.issued_at))
    trust = load_trust(forged.trust.read_bytes())
    report = verify_package(path, trust)
    assert report.valid, [(c.key, c.reason) for c in report.failed]


def test_escape_text() -> None:
    assert escape_text("plain 标题 text") == "plain 标题 text"
    assert escape_text("a\nb\tc\\d") == "a\\nb\\tc\\\\d"
    assert escape_text("\u202e\u2066\u200b\u200d\ufeff\x85\x1b\u2028") == (
        "\\u202e\\u2066\\u200b\\u200d\\ufeff\\x85\\x1b\\u2028"
    )
    assert escape_text("x\U000e0001", keep="") == "x\\U000e0001"
    assert escape_text("a\nb", keep="\n") == "a\nb"
    assert json.loads(escape_json(json.dumps("a\u202e\U000e0001", ensure_ascii=False))) == (
        "a\u202e\U000e0001"
    )


def test_pages_show_invisible_characters_escaped() -> None:
    """Every ``{{ value }}`` of every template goes through the same escaping
    (after Jinja's HTML autoescape)."""
    env = environment("en")
    html = env.from_string("<p>{{ title }}</p><pre>{{ note }}</pre>").render(
        title="invoice\u202efdp.exe <b>\u200b", note="line 1\nline 2"
    )
    assert html == "<p>invoice\\u202efdp.exe &lt;b&gt;\\u200b</p><pre>line 1\nline 2</pre>"
