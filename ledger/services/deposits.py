"""Deposits (在线存证): hash-only and file deposits, their receipts, and the
``Idempotency-Key`` rules.

A deposit is planned (caller checked, drafts built, an earlier deposit under
the same key looked up), then committed through the group-commit sequencer,
synchronously (:meth:`DepositService.commit`, the command line) or awaiting
it without a thread (:meth:`DepositService.commit_async`, the HTTP service).
A receipt is made only from a durable entry.

Idempotency: a caller may send a key with a deposit. A later deposit by the
same owner under exactly the same key and an identical request answers the
first deposit's receipts without appending; under the same key with another
request it is a :class:`Conflict`. Both are decided while planning, before
an uploaded file is published, so a refused upload leaves nothing stored.
A retry that races its original is stopped by a unique index (owner, key)
and then answered as a replay.

Files: a deposit's files are published through a :class:`~ledger.blobs.BlobHold`
(:meth:`DepositService.publish`), pinned until the deposit is committed or
refused. A refused or failed deposit removes the files it published unless
another deposit of the same content, in flight or committed, needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from ledger.blobs import CHUNK, BlobHold, BlobInfo, BlobWriter
from ledger.errors import Conflict, IntegrityError, InvalidInput, NotFound
from ledger.events import Draft, evidence_deposited
from ledger.offload import in_thread
from ledger.services.evidence import PUBLISHED_MAX_AGE, EvidenceService, Inclusion
from ledger.services.policy import Actor, authorize
from ledger.storage.base import Appended
from ledger.storage.queries import EvidenceRecord, ReadModel
from verifier.canonical import canonicalize
from verifier.certificate import deposit_number

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = [
    "DepositPlan",
    "DepositResult",
    "DepositService",
    "FileDeposit",
    "HashDeposit",
    "Receipt",
]


@dataclass(frozen=True, slots=True)
class HashDeposit:
    """A hash-only deposit: the content never reaches the ledger."""

    sha256: str
    sm3: str | None = None
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class FileDeposit:
    """A file already streamed into the blob store (or kept inline: ``info.data``)."""

    info: BlobInfo
    file_name: str | None = None
    media_type: str | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a depositor gets back once the deposit is durable (the one shape
    of a receipt: API, pages and command line)."""

    evidence_id: str
    deposit_no: str
    index: int
    leaf_hash: str
    time: str
    kind: str
    sha256: str
    status: str
    """``durable``, or ``sealed`` once inside a published checkpoint."""
    sm3: str | None = None
    size: int | None = None
    title: str | None = None
    file_name: str | None = None
    proof: Inclusion | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = value.to_json() if isinstance(value, Inclusion) else value
        return out


@dataclass(slots=True)
class DepositPlan:
    """A deposit checked and drafted, not yet committed."""

    owner: str | None
    key: str | None
    request_sha256: str
    drafts: list[Draft]
    replay: list[EvidenceRecord] = field(default_factory=list)
    """Deposits already made under the same key and request: committing
    answers them again and appends nothing (nothing needs publishing)."""
    hold: BlobHold | None = None
    """The files published for this deposit (:meth:`DepositService.publish`),
    pinned until it is committed; removed if it fails."""


@dataclass(frozen=True, slots=True)
class DepositResult:
    """Receipts in request order; ``replayed`` when an earlier deposit under
    the same Idempotency-Key answered, ``sealed`` when every entry is inside
    a published checkpoint."""

    receipts: tuple[Receipt, ...]
    replayed: bool
    sealed: bool

    def to_json(self) -> dict[str, Any]:
        return {"receipts": [r.to_json() for r in self.receipts]}


def _request_digest(obj: Any) -> str:
    return hashlib.sha256(canonicalize(obj)).hexdigest()


class DepositService:
    """Deposits for one caller at a time."""

    def __init__(self, ledger: Ledger, reads: ReadModel, evidence: EvidenceService) -> None:
        self._ledger = ledger
        self._reads = reads
        self._evidence = evidence

    # -- planning ----------------------------------------------------------
    def resolve_owner(self, actor: Actor, owner: str | None) -> str | None:
        """The account the evidence will belong to: the caller, or (for the
        operator only) the account named by ``owner``, or nobody."""
        authorize(actor, "evidence.deposit")
        if not actor.is_operator:
            if owner is not None and owner != actor.account_id:
                raise InvalidInput("deposit: a rights holder deposits only for themself")
            return actor.account_id
        if owner is None:
            return None
        found = self._reads.active_accounts_by_id(owner) or self._reads.active_accounts_by_name(
            owner, "rights_holder"
        )
        found = [a for a in found if a.role == "rights_holder"]
        if len(found) != 1:
            raise NotFound(f"account: no active rights_holder account {owner!r}")
        return found[0].account_id

    def plan_hash(
        self,
        actor: Actor,
        deposit: HashDeposit,
        key: str | None = None,
        owner: str | None = None,
    ) -> DepositPlan:
        """Check and draft a hash-only deposit."""
        owner = self.resolve_owner(actor, owner)
        digest = ""
        if key is not None:
            self._check_key(owner, key)
            digest = _request_digest(
                {
                    "sha256": deposit.sha256,
                    "sm3": deposit.sm3,
                    "title": deposit.title,
                    "description": deposit.description,
                }
            )
        draft = evidence_deposited(
            kind="hash",
            sha256=deposit.sha256,
            sm3=deposit.sm3,
            title=deposit.title,
            description=deposit.description,
            owner=owner,
            idempotency_key=f"{key}#0" if key else None,
            request_sha256=digest or None,
        )
        plan = DepositPlan(owner=owner, key=key, request_sha256=digest, drafts=[draft])
        plan.replay = self.find_replay(plan)
        return plan

    def plan_files(
        self,
        actor: Actor,
        files: Sequence[FileDeposit],
        *,
        title: str | None = None,
        description: str | None = None,
        key: str | None = None,
        owner: str | None = None,
    ) -> DepositPlan:
        """Check and draft a deposit of files already streamed to the blob
        store (staged or published; a caller that staged them publishes them
        only once this plan is made, so a refused deposit leaves nothing)."""
        owner = self.resolve_owner(actor, owner)
        if not files:
            raise InvalidInput("deposit: no file")
        digest = ""
        if key is not None:
            self._check_key(owner, key)
            digest = _request_digest(
                {
                    "title": title,
                    "description": description,
                    "files": [
                        {
                            "name": f.file_name,
                            "media_type": f.media_type,
                            "sha256": f.info.sha256,
                        }
                        for f in files
                    ],
                }
            )
        drafts = [
            evidence_deposited(
                kind="file",
                sha256=f.info.sha256,
                sm3=f.info.sm3,
                size=f.info.size,
                title=title,
                description=description,
                file_name=f.file_name,
                media_type=f.media_type,
                owner=owner,
                idempotency_key=f"{key}#{i}" if key else None,
                request_sha256=digest or None,
                content=f.info.data,
            )
            for i, f in enumerate(files)
        ]
        plan = DepositPlan(owner, key, digest, drafts)
        plan.replay = self.find_replay(plan)
        return plan

    def publish(self, plan: DepositPlan, writers: Iterable[BlobWriter]) -> None:
        """Publish the staged files of an accepted ``plan`` (not a replay),
        each pinned until :meth:`commit` settles the plan. If one cannot be
        published, those already published are removed (when nothing else
        needs them) and the error is raised; the caller aborts the rest."""
        if plan.hold is None:
            plan.hold = self._ledger.blobs.hold(self._reads.blob_in_use)
        try:
            for w in writers:
                plan.hold.publish(w)
        except BaseException:
            plan.hold.settle(failed=True)
            raise

    def plan_stream(
        self,
        actor: Actor,
        stream: BinaryIO,
        *,
        file_name: str | None = None,
        media_type: str | None = None,
        title: str | None = None,
        owner: str | None = None,
    ) -> DepositPlan:
        """Stream one file into the blob store (hashed as it goes, within the
        upload limit) and plan its deposit; the file is published only once
        the plan is made, so a refused deposit leaves nothing stored."""
        self.resolve_owner(actor, owner)  # refuse before storing anything
        blobs, limit = self._ledger.blobs, self._ledger.config.max_upload_bytes
        chunks = iter(lambda: stream.read(CHUNK), b"")
        with blobs.staged(chunks, limit) as staged:
            info = staged.finish()
            deposit = FileDeposit(info, file_name, media_type)
            plan = self.plan_files(actor, [deposit], title=title, owner=owner)
            if not plan.replay:
                self.publish(plan, [staged])
        return plan

    @staticmethod
    def _check_key(owner: str | None, key: str) -> None:
        if owner is None:
            raise InvalidInput("deposit: an Idempotency-Key needs an owner")
        if not key or len(key) > 200 or not all(0x21 <= ord(c) <= 0x7E for c in key):
            raise InvalidInput("deposit: Idempotency-Key must be 1-200 printable ASCII characters")

    def find_replay(self, plan: DepositPlan) -> list[EvidenceRecord]:
        """Deposits already made under the plan's key; :class:`Conflict` if
        they were made with another request."""
        if plan.key is None or plan.owner is None:
            return []
        done = self._reads.evidence_by_key(plan.owner, plan.key)
        if any(r.request_sha256 != plan.request_sha256 for r in done):
            raise Conflict("deposit: Idempotency-Key was already used with another request body")
        return done

    # -- committing --------------------------------------------------------
    def commit(self, plan: DepositPlan) -> DepositResult:
        """Append the plan's drafts (or replay an earlier deposit); block until durable."""
        if plan.replay:
            return self._result(plan.replay, replayed=True)
        try:
            appended = self._ledger.append(plan.drafts)
        except IntegrityError:
            done = self._after_race(plan)
            return self._result(done, replayed=True)
        except BaseException:
            self._settle(plan, failed=True)
            raise
        self._settle(plan, failed=False)
        return self._result(self._records(plan.drafts, appended), replayed=False)

    async def commit_async(self, plan: DepositPlan) -> DepositResult:
        """:meth:`commit` for an event loop: the group commit is awaited, not
        waited for on a thread."""
        if plan.replay:
            return self._result(plan.replay, replayed=True)
        try:
            appended = await self._append_async(plan)
        except IntegrityError:
            done = await in_thread(self._after_race, plan)
            return self._result(done, replayed=True)
        except BaseException:
            await in_thread(self._settle, plan, True)
            raise
        if plan.hold is not None:
            await in_thread(self._settle, plan, False)
        return self._result(self._records(plan.drafts, appended), replayed=False)

    async def _append_async(self, plan: DepositPlan) -> list[Appended]:
        fut = self._ledger.submit_async(plan.drafts)
        if plan.hold is None:
            return await fut
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # The caller went away but the append goes on: its files are
            # settled by its outcome, not removed under an entry that names them.
            with contextlib.suppress(Exception):
                await fut
            await in_thread(self._settle, plan, fut.cancelled() or fut.exception() is not None)
            raise

    def _after_race(self, plan: DepositPlan) -> list[EvidenceRecord]:
        """A concurrent retry with the same key won the race: answer with its
        deposits (a unique index refused ours)."""
        try:
            done = self.find_replay(plan) if plan.key else []
        finally:
            self._settle(plan, failed=True)
        if not done:
            raise IntegrityError("deposit: the log refused the entry")
        return done

    @staticmethod
    def _settle(plan: DepositPlan, failed: bool) -> None:
        """Unpin the plan's files; if it ``failed``, remove those nothing else needs."""
        if plan.hold is not None:
            plan.hold.settle(failed=failed)

    @staticmethod
    def _records(drafts: Sequence[Draft], appended: Sequence[Appended]) -> list[EvidenceRecord]:
        """Evidence records of fresh deposits, without reading them back."""
        out = []
        for d, a in zip(drafts, appended, strict=True):
            p = d.private
            out.append(
                EvidenceRecord(
                    evidence_id=a.ref,
                    index=a.index,
                    time=a.time,
                    deposit_no=deposit_number(a.index, a.time),
                    kind=p["kind"],
                    sha256=p["sha256"],
                    owner=p.get("owner"),
                    title=p.get("title"),
                    description=p.get("description"),
                    file_name=p.get("file_name"),
                    media_type=p.get("media_type"),
                    size=p.get("size"),
                    sm3=p.get("sm3"),
                    leaf_hash=a.leaf_hash,
                )
            )
        return out

    @classmethod
    def receipt_for(cls, draft: Draft, appended: Appended) -> Receipt:
        """The receipt of one draft another producer (capture) just appended."""
        return cls.receipt(cls._records([draft], [appended])[0], 0)

    def _result(self, records: Sequence[EvidenceRecord], *, replayed: bool) -> DepositResult:
        sealed = self._ledger.published_size(max_age=PUBLISHED_MAX_AGE)
        receipts = tuple(self.receipt(r, sealed) for r in records)
        return DepositResult(receipts, replayed, all(r.index < sealed for r in records))

    @staticmethod
    def receipt(r: EvidenceRecord, sealed: int, proof: Inclusion | None = None) -> Receipt:
        """The receipt of one deposit, given the published size ``sealed``."""
        return Receipt(
            evidence_id=r.evidence_id,
            deposit_no=r.deposit_no,
            index=r.index,
            leaf_hash=(r.leaf_hash or b"").hex(),
            time=r.time,
            kind=r.kind,
            sha256=r.sha256,
            status="sealed" if r.index < sealed else "durable",
            sm3=r.sm3,
            size=r.size,
            title=r.title,
            file_name=r.file_name,
            proof=proof,
        )

    # -- waiting for the seal ------------------------------------------------
    async def until_sealed(self, result: DepositResult, timeout: float) -> DepositResult:
        """Wait (polling the published size) until every entry of ``result``
        is inside a published checkpoint or ``timeout`` passes; then the
        receipts again, with inclusion proofs for the sealed ones."""
        last = max(r.index for r in result.receipts)
        deadline = time.monotonic() + timeout
        sealed = self._ledger.published_size(max_age=PUBLISHED_MAX_AGE)
        while sealed <= last and time.monotonic() < deadline:
            await asyncio.sleep(PUBLISHED_MAX_AGE)
            sealed = self._ledger.published_size(max_age=PUBLISHED_MAX_AGE)
        return await in_thread(self.with_proofs, result, sealed)

    def with_proofs(self, result: DepositResult, sealed: int) -> DepositResult:
        """Receipts with their status at ``sealed`` and, when every entry is
        sealed, each one's verified inclusion proof."""
        complete = all(r.index < sealed for r in result.receipts)
        out = []
        for r in result.receipts:
            proof = None
            if complete:
                proof = self._evidence.inclusion_of(r.index, None, bytes.fromhex(r.leaf_hash))
            out.append(
                Receipt(
                    **{s: getattr(r, s) for s in Receipt.__slots__ if s not in ("status", "proof")},
                    status="sealed" if r.index < sealed else "durable",
                    proof=proof,
                )
            )
        return DepositResult(tuple(out), result.replayed, complete)

    # -- one-call deposits (command line, scripts) -----------------------------
    def deposit_hash(
        self,
        actor: Actor,
        sha256: str,
        sm3: str | None = None,
        title: str | None = None,
        *,
        description: str | None = None,
        owner: str | None = None,
    ) -> Receipt:
        """Plan and commit one hash-only deposit; its receipt once durable."""
        plan = self.plan_hash(actor, HashDeposit(sha256, sm3, title, description), owner=owner)
        return self.commit(plan).receipts[0]

    def deposit_file(
        self,
        actor: Actor,
        stream: BinaryIO,
        *,
        title: str | None = None,
        file_name: str | None = None,
        media_type: str | None = None,
        owner: str | None = None,
    ) -> Receipt:
        """Stream, plan and commit one file deposit; its receipt once durable."""
        plan = self.plan_stream(
            actor, stream, file_name=file_name, media_type=media_type, title=title, owner=owner
        )
        return self.commit(plan).receipts[0]

    # -- bulk (command line) ---------------------------------------------------
    def bulk(self, drafts: Iterable[Draft], chunk: int | None = None) -> Iterator[Receipt]:
        """Many operator deposits, pipelined through the sequencer in chunks, in order."""
        size = chunk or self._ledger.config.group_max
        pending: list[tuple[list[Draft], Future[list[Appended]]]] = []
        buf: list[Draft] = []
        sequencer = self._ledger.sequencer

        def flush() -> None:
            pending.append((list(buf), sequencer.submit(buf)))
            buf.clear()

        def receipts(ds: list[Draft], fut: Future[list[Appended]]) -> Iterator[Receipt]:
            for record in self._records(ds, fut.result()):
                yield self.receipt(record, 0)

        for d in drafts:
            buf.append(d)
            if len(buf) >= size:
                flush()
                while len(pending) > 2:
                    yield from receipts(*pending.pop(0))
        if buf:
            flush()
        for ds, fut in pending:
            yield from receipts(ds, fut)
