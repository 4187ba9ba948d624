"""The PostgreSQL server the tests use, importable from any test module.

Kept out of ``conftest.py``: several directories have their own
``conftest.py``, so ``from conftest import ...`` can resolve to the wrong one.
"""

from __future__ import annotations

import os

PG_ADMIN_URL = os.environ.get("EVIDENCE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pg_url(schema: str) -> str:
    """A database URL selecting ``schema`` through ``search_path``."""
    return f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
