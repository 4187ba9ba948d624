"""The ledger: one object that deposits, seals, proves, rebuilds and reports.

CLI commands and HTTP routes are thin layers over :class:`Ledger`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.blobs import BLOB_KINDS, default_blob_kind, open_blob_store
from ledger.config import Config, check_origin, default_database_url, load_config, save_config
from ledger.errors import ConfigError, InvalidInput, LedgerError, NotFound
from ledger.events import Draft, format_time
from ledger.files import private_dir, secure_home
from ledger.keys import NoteSigner, generate_key_file, load_signer
from ledger.observe import Observer
from ledger.sequencer import Sequencer
from ledger.storage import Store, create_store, open_store
from ledger.storage.base import Appended, CheckpointRow, Publication, TileRow
from ledger.tree import NodeCache, NodeReader, integrate
from verifier.checkpoint import Checkpoint
from verifier.merkle import verify_consistency, verify_inclusion
from verifier.note import VerifierKey

if TYPE_CHECKING:
    from ledger.anchoring import Anchor

__all__ = ["Ledger"]


class Ledger:
    """An open ledger home: store, sequencer, blob store and log key."""

    def __init__(self, config: Config, store: Store, signer: NoteSigner) -> None:
        self.config = config
        self.store = store
        self.signer = signer
        self.blobs = open_blob_store(
            config.blobs, config.blob_dir, config.database_url, inline=store.inline_blob
        )
        self.observer = Observer()
        self.sequencer = Sequencer(store, config.group_max, self.observer)
        self._seal_lock = threading.Lock()
        self._published_cache: tuple[float, int] | None = None
        self._publish_lock = threading.Lock()
        self._anchor: Anchor | None = None
        self._nodes = NodeCache()
        self._publications: dict[int, Publication] = {}

    # -- lifecycle -------------------------------------------------------
    @classmethod
    def init(
        cls,
        home: Path,
        origin: str | None = None,
        database_url: str | None = None,
        blobs: str | None = None,
    ) -> Ledger:
        """Create a ledger home, its key and database, and publish the empty checkpoint.

        ``blobs`` (``fs`` or ``postgresql``) defaults to the database's kind.
        """
        if (home / "config.json").exists():
            raise ConfigError(f"init: {home} already holds a ledger")
        if origin is None:
            origin = f"evidence-ledger.local/{datetime.now(UTC):%Y}"
        origin = check_origin(origin)
        url = database_url or default_database_url(home)
        kind = blobs or default_blob_kind(url)
        if kind not in BLOB_KINDS:
            raise InvalidInput(f"init: blobs must be one of {', '.join(BLOB_KINDS)}")
        if kind == "postgresql" and default_blob_kind(url) != "postgresql":
            raise InvalidInput("init: --blobs postgresql needs a PostgreSQL database")
        cfg = Config(home=home, origin=origin, database_url=url, blobs=kind)
        private_dir(home)
        generate_key_file(cfg.key_path)
        try:
            store = create_store(cfg.database_url)
        except LedgerError:
            cfg.key_path.unlink()
            raise
        save_config(cfg)
        from ledger.pdfcert.x509 import ensure_local_ca  # the notary CA for PDF signatures

        ensure_local_ca(home, origin)
        ledger = cls(cfg, store, load_signer(cfg.key_path, origin))
        ledger.seal()
        return ledger

    @classmethod
    def open(cls, home: Path) -> Ledger:
        secure_home(home)
        cfg = load_config(home)
        signer = load_signer(cfg.key_path, cfg.origin)
        store = open_store(cfg.database_url)
        return cls(cfg, store, signer)

    def close(self) -> None:
        if self._anchor is not None:
            self._anchor.close()
        self.sequencer.close()
        self.blobs.close()
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def observe(self, observer: Observer) -> None:
        """Report appends, seals, anchoring failures and stored blobs to ``observer``."""
        self.observer = observer
        self.sequencer.observer = observer
        self.blobs.observer = observer
        if self._anchor is not None:
            self._anchor.observer = observer

    @property
    def verifier_key(self) -> VerifierKey:
        return self.signer.verifier_key

    # -- deposits --------------------------------------------------------
    def append(self, drafts: Sequence[Draft]) -> list[Appended]:
        """Append events and wait until they are durable."""
        return self.sequencer.append(drafts)

    def submit(self, drafts: Sequence[Draft]) -> Future[list[Appended]]:
        """Queue events for the next group commit; the future resolves once durable."""
        return self.sequencer.submit(drafts)

    def submit_async(self, drafts: Sequence[Draft]) -> asyncio.Future[list[Appended]]:
        """:meth:`submit` for coroutines: an asyncio future of the running loop."""
        return self.sequencer.submit_async(drafts)

    def published_size(self, max_age: float = 0.0, covering: int = 0) -> int:
        """Entries covered by the latest published checkpoint (0 before the first).

        ``max_age`` lets busy callers (every receipt asks) reuse a reading that
        many seconds old instead of querying again, unless it covers fewer
        than ``covering`` entries (another process may have published since).
        """
        now = time.monotonic()
        cached = self._published_cache
        if cached is not None and now - cached[0] <= max_age and cached[1] >= covering:
            return cached[1]
        pub = self.store.latest_publication()
        size = 0 if pub is None else pub.size
        self._published_cache = (now, size)
        return size

    # -- sealing ---------------------------------------------------------
    @property
    def anchored(self) -> bool:
        """Whether checkpoints need witnesses or a TSA before they are published."""
        return bool(self.config.witnesses) or self.config.tsa is not None

    @property
    def anchor(self) -> Anchor:
        """The witness and TSA client of this ledger (built on first use)."""
        if self._anchor is None:
            from ledger.anchoring import Anchor

            self._anchor = Anchor(self.config, lambda a, b: self.reader().consistency_proof(a, b))
            self._anchor.observer = self.observer
        return self._anchor

    def seal(self, batch_max: int | None = None) -> CheckpointRow:
        """Integrate all pending entries, one checkpoint per batch, then publish
        the last one; return it as published.

        Without witnesses or a TSA every checkpoint is published as it is
        sealed. With them, see :meth:`publish`: an unmet policy raises
        :class:`ledger.anchoring.AnchoringError` and publishes nothing.
        """
        while True:
            _, more = self.seal_batch(batch_max)
            if not more:
                break
        # Also publishes a backlog sealed while anchoring was required, if the
        # policy has since been removed: the latest sealed is always published.
        return self.publish()

    def publish(self) -> CheckpointRow:
        """Anchor and publish the latest sealed checkpoint, unless it already is.

        (1) one publisher per process; (2) nothing to do when the latest sealed
        checkpoint is published; (3) collect cosignatures and a token with no
        database transaction open (deposits continue meanwhile); (4) record the
        publication. Raises :class:`ledger.anchoring.AnchoringError` when the
        policy is not met.
        """
        with self._publish_lock:  # (1)
            sealed = self.store.latest_checkpoint()
            if sealed is None:
                raise NotFound("checkpoint: nothing sealed yet")
            pub = self.store.latest_publication()
            if pub is not None and pub.size >= sealed.size:  # (2)
                self._published_cache = (time.monotonic(), pub.size)
                return pub.checkpoint_row()
            result = self.anchor.anchor(sealed, pub.size if pub else 0)  # (3)
            self.store.publish(result)  # (4)
            self._published_cache = (time.monotonic(), result.size)
            return result.checkpoint_row()

    def seal_batch(self, batch_max: int | None = None) -> tuple[CheckpointRow, bool]:
        """Integrate up to ``batch_max`` pending entries and publish a checkpoint.

        (1) one sealer per process; (2) plan the checkpoint from committed
        data without holding the write lock, so deposits go on meanwhile;
        (3) take the write lock and store the plan, unless another process
        sealed since it was made, in which case plan again. Returns the
        checkpoint and whether entries are still pending.
        """
        limit = batch_max or self.config.seal.batch_max
        with self._seal_lock:  # (1)
            started = time.perf_counter()
            while True:
                plan = self._plan_seal(limit)  # (2)
                if isinstance(plan, CheckpointRow):
                    return plan, False
                old, tiles, row, more = plan
                with self.store.sealing() as txn:  # (3)
                    latest = txn.latest_checkpoint()
                    if (latest.size if latest else 0) != old:
                        continue
                    txn.put_tiles(tiles)
                    txn.add_checkpoint(row)
                    if not self.anchored:
                        txn.publish(Publication(row.size, row.root, row.note, row.time))
                self.observer.sealed(time.perf_counter() - started, row.size)
                return row, more

    def _plan_seal(
        self, limit: int
    ) -> CheckpointRow | tuple[int, list[TileRow], CheckpointRow, bool]:
        """The latest checkpoint if nothing is pending; otherwise the next one.

        (1) integrate the new leaf hashes into tiles; (2) compute the new root;
        (3) prove and verify consistency with the previous checkpoint; (4) sign.
        It reads one committed snapshot without a lock; :meth:`seal_batch`
        stores the result only if the checkpoint it started from is still the
        latest.
        """
        with self.store.snapshot() as snap:
            latest = snap.latest_checkpoint()
            size = snap.size()
            old = latest.size if latest else 0
            if latest is not None and size == old:
                return latest
            target = min(size, old + limit)
            tiles = integrate(snap.tiles, old, snap.leaf_hashes(old, target))  # (1)
            reader = NodeReader(snap.tiles, tiles)
            root = reader.root(target)  # (2)
            if latest is not None:  # (3)
                proof = reader.consistency_proof(old, target)
                verify_consistency(old, target, proof, latest.root, root)
        body = Checkpoint(self.config.origin, target, root).to_text()
        note = self.signer.sign_note(body).to_text()  # (4)
        row = CheckpointRow(target, root, note, format_time(datetime.now(UTC)))
        return old, tiles, row, target < size

    # -- reading ---------------------------------------------------------
    def latest_checkpoint(self) -> CheckpointRow:
        """The latest published checkpoint, its note carrying any cosignatures."""
        pub = self.store.latest_publication()
        if pub is None:
            raise NotFound("checkpoint: none published yet")
        return pub.checkpoint_row()

    def published(self, size: int) -> Publication:
        """The published checkpoint of ``size`` entries, with its token."""
        pub = self._publications.get(size)
        if pub is not None:
            return pub
        pub = self.store.publication(size)
        if pub is None:
            raise NotFound(f"checkpoint: none published for size {size}")
        # Publications are append-only rows: a found one never changes.
        if len(self._publications) >= 256:
            self._publications.clear()
        self._publications[size] = pub
        return pub

    def checkpoint_token(self, size: int) -> bytes | None:
        """The RFC 3161 token (DER) of the published checkpoint of ``size``
        entries; None if it was published without a TSA. NotFound if unpublished."""
        return self.published(size).token

    def reader(self) -> NodeReader:
        """Proof reads over committed tiles, sharing this ledger's :class:`NodeCache`."""
        return NodeReader(self.store.tiles, shared=self._nodes)

    def inclusion_proof(
        self, index: int, size: int | None = None
    ) -> tuple[CheckpointRow, list[bytes]]:
        """Inclusion proof of entry ``index`` in a published checkpoint, verified."""
        cp, proof, _ = self.inclusion(index, size)
        return cp, proof

    def inclusion(
        self, index: int, size: int | None = None, leaf: bytes | None = None
    ) -> tuple[CheckpointRow, list[bytes], bytes]:
        """:meth:`inclusion_proof` and the entry's leaf hash it was verified with
        (``leaf``, when the caller already read it from the store)."""
        cp = self.latest_checkpoint() if size is None else self.published(size).checkpoint_row()
        if not 0 <= index < cp.size:
            raise NotFound(f"inclusion: entry {index} is not in checkpoint {cp.size}")
        proof = self.reader().inclusion_proof(index, cp.size)
        if leaf is None:
            leaf = self.store.entries(index, index + 1)[0][4]
        verify_inclusion(leaf, index, cp.size, proof, cp.root)
        return cp, proof, leaf

    def consistency_proof(
        self, old: int, new: int
    ) -> tuple[CheckpointRow, CheckpointRow, list[bytes]]:
        """Consistency proof between two published checkpoints, verified."""
        a, b = self.store.publication(old), self.store.publication(new)
        if a is None or b is None:
            raise NotFound(f"consistency: no checkpoint for size {old if a is None else new}")
        proof = self.reader().consistency_proof(old, new)
        verify_consistency(old, new, proof, a.root, b.root)
        return a.checkpoint_row(), b.checkpoint_row(), proof

    @property
    def last_anchor_error(self) -> str | None:
        """What the witnesses or the TSA last answered when a publication failed."""
        return self._anchor.last_error if self._anchor else None
