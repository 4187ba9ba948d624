"""One PDF world per test module: building it renders and signs three certificates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pdf_support import PdfWorld, build_pdf_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PdfWorld]:
    w = build_pdf_world(tmp_path_factory.mktemp("pdf"))
    try:
        yield w
    finally:
        w.ledger.close()
