"""Evidence ledger core: event store, hash chain, tiles, checkpoints, blobs."""

from ledger.core import Ledger
from ledger.errors import LedgerError

__all__ = ["Ledger", "LedgerError"]
