"""The verifier package stands alone: stdlib and ``cryptography`` only (plus
``rfc3161-client`` for RFC 3161 tokens, and pyHanko and segno for PDF
certificates, tqdm for progress bars, each in the modules that need it), never
``ledger`` or ``api`` (a judge installs it without the platform)."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

# Not ``import verifier``: with tests/ on sys.path (tests/conftest.py puts it
# there) and an editable install, the name can resolve to this test directory
# as a namespace package. Load the package's own __init__ instead.
PACKAGE = Path(__file__).resolve().parents[2] / "verifier"
ALLOWED = set(sys.stdlib_module_names) | {"cryptography", "verifier"}
# What RFC 3161 token checking strictly needs (DESIGN.md), and only there.
ALLOWED_IN = {
    "timestamp.py": {"rfc3161_client"},
    # PDF certificates: the page's QR code and the certificate's TSA time
    # (pdflayout.py), the PAdES signature (pdf.py), and only there.
    "pdflayout.py": {"rfc3161_client", "segno"},
    "pdf.py": {"pyhanko", "pyhanko_certvalidator", "asn1crypto"},
    # Progress bars of long checks on a terminal (imported when drawn), and only there.
    "progress.py": {"tqdm"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_verifier_imports_only_stdlib_and_cryptography() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        outside = _imports(path) - ALLOWED - ALLOWED_IN.get(path.name, set())
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_public_names_exist() -> None:
    spec = importlib.util.spec_from_file_location("_verifier_init", PACKAGE / "__init__.py")
    assert spec is not None
    assert spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    for name in package.__all__:
        assert hasattr(package, name), name
    assert len(package.__all__) == len(set(package.__all__))


def test_typed_marker() -> None:
    assert (PACKAGE / "py.typed").is_file()
