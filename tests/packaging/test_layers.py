"""SQL lives in the storage package: no statement text and no raw query call in
the services, the routes, the pages or the command line.

The storage drivers are the exceptions by design: ``ledger/storage/`` (the
SQL store and its dialects), the PostgreSQL blob store (its own chunk tables)
and the witness's own small database (a separate program)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = (
    "ledger/storage/",
    "ledger/blobs/postgres.py",
    "ledger/witness/store.py",
)
STATEMENT = re.compile(
    r"^\s*(select\s.+\sfrom\s|insert\s+into\s|update\s+\w+\s+set\s|delete\s+from\s|"
    r"create\s+(unique\s+)?(table|index)\s|alter\s+table\s)",
    re.IGNORECASE | re.DOTALL,
)
RAW_CALLS = {"query", "execute", "execute_unprepared", "executemany"}


def _sources() -> list[Path]:
    files = []
    for package in ("ledger", "api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(DRIVERS):
                files.append(path)
    return files


def _names_a_store(node: ast.expr) -> bool:
    """``store``, ``self.store``, ``ledger._store`` and the like."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return str(name).lstrip("_") == "store"


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and STATEMENT.match(node.value)
        ):
            found.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in RAW_CALLS
            and _names_a_store(node.func.value)
        ):
            found.append(f"line {node.lineno}: store.{node.func.attr}(...)")
    return found


def test_the_checks_find_sql() -> None:
    assert STATEMENT.match("select evidence_id from evidence where x = ?")
    assert STATEMENT.match("  INSERT INTO accounts values (?)")
    assert STATEMENT.match("update live_sessions set seen = 1")
    assert not STATEMENT.match("select a file to deposit")
    assert not STATEMENT.match("Update the page")


def test_no_sql_outside_the_storage_package() -> None:
    sources = _sources()
    assert len(sources) > 50
    bad = {str(p.relative_to(ROOT)): v for p in sources if (v := _violations(p))}
    assert bad == {}
