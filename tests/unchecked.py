"""Append events the ledger itself would refuse, importable from any test module.

The ledger checks what "only once" events require of its state inside the
append transaction (:mod:`ledger.guards`), so it never writes a second
revocation or a certificate after its notary's key was revoked. A log may
still hold such entries: written by an older producer, or by someone with
the database and a stolen key. Tests of the verifier's fold and of audits
build those logs with :func:`unchecked`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ledger.guards import REQUIREMENTS


@contextmanager
def unchecked(*types: str) -> Iterator[None]:
    """Within the block, events of ``types`` are appended without their requirements."""
    saved = {t: REQUIREMENTS.pop(t) for t in types if t in REQUIREMENTS}
    try:
        yield
    finally:
        REQUIREMENTS.update(saved)
