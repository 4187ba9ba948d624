"""Anchoring: witness cosignatures (C2SP tlog-witness) and RFC 3161 tokens per checkpoint.

The sealer integrates entries and signs a checkpoint in one database
transaction. Publishing it is separate and happens with no transaction open:
:class:`Anchor` sends the checkpoint to every configured witness in parallel
(each with the consistency proof from the size that witness last cosigned,
learnt from a 409 when our guess is wrong), asks every configured TSA for a
token over the checkpoint body with a fresh nonce, checks every answer with
:mod:`verifier`, and returns the publication only when the policy is met: at
least ``quorum`` valid cosignatures and valid tokens from at least
``tsa_quorum`` TSAs. Every valid token that arrives in time is kept: one TSA's
token as it is, several as a token set
(:func:`verifier.timestamp.encode_token_set`). Otherwise it raises
:class:`AnchoringError` naming what each witness and TSA answered; nothing is
published and the sealer tries again on its next round.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import rfc3161_client

from ledger.config import Config, TsaConfig, WitnessEntry
from ledger.errors import AuditError, ConfigError, LedgerError
from ledger.events import format_time
from ledger.observe import Observer
from ledger.storage.base import CheckpointRow, Publication
from ledger.witness.core import format_add_checkpoint
from verifier import der
from verifier.checkpoint import Checkpoint
from verifier.cosignature import MAX_CLOCK_SKEW
from verifier.errors import Error as VerifierError
from verifier.ers import HASH_OIDS
from verifier.note import Note, NoteSignature, VerifierKey, parse_note, parse_signature_lines
from verifier.timestamp import (
    TimestampInfo,
    encode_token_set,
    load_roots,
    response_token,
    verify_timestamp,
    verify_token,
)

if TYPE_CHECKING:
    from cryptography import x509

    from ledger.core import Ledger

__all__ = [
    "Anchor",
    "AnchoringError",
    "TsaClient",
    "WitnessClient",
    "audit_publications",
    "load_tsa_roots",
    "trust_anchoring",
]

log = logging.getLogger("evidence_ledger.anchoring")

TLOG_SIZE = "text/x.tlog.size"
TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"
MAX_RESPONSE = 64 * 1024


class AnchoringError(LedgerError):
    """A checkpoint was not published: the anchoring policy was not met.

    ``reasons`` maps each witness name and each TSA (``"tsa"`` when there is one,
    ``"tsa URL"`` for each of several) to what it answered.
    """

    def __init__(self, message: str, size: int, reasons: dict[str, str]) -> None:
        super().__init__(message)
        self.size = size
        self.reasons = reasons


class _Refused(Exception):
    """A witness or the TSA answered, and the answer cannot count."""


class _Unreachable(Exception):
    """No usable answer after every retry (connection, timeout or 5xx)."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Network limits of one anchoring round."""

    request: float = 5.0
    """Seconds for one HTTP request (connect, send and read)."""
    retries: int = 2
    """Extra attempts after a connection failure, timeout or 5xx."""
    backoff: float = 0.1
    """Seconds before the first retry, doubled for each further one."""
    round: float = 15.0
    """Seconds after which a round gives up on whoever has not answered."""
    grace: float = 0.5
    """Once the policy is met, seconds to wait for the remaining witnesses."""


def _post(
    http: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    limits: Timeouts,
    deadline: float,
) -> httpx.Response:
    """POST with retries on transport errors and 5xx; 4xx answers are returned."""
    attempt = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Unreachable("no answer before the round's deadline")
        try:
            r = http.post(url, content=body, headers=headers, timeout=min(limits.request, left))
            if r.status_code < 500:
                if len(r.content) > MAX_RESPONSE:
                    raise _Refused(f"answer of {len(r.content)} bytes is too large")
                return r
            problem = f"HTTP {r.status_code}: {_first_line(r.text)}"
        except httpx.TransportError as e:
            problem = f"{type(e).__name__}: {e}"
        if attempt >= limits.retries:
            raise _Unreachable(problem)
        time.sleep(min(limits.backoff * 2**attempt, max(0.0, deadline - time.monotonic())))
        attempt += 1


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


class WitnessClient:
    """One witness: where it is, its key, and the size it last cosigned (as known)."""

    def __init__(self, entry: WitnessEntry, http: httpx.Client, limits: Timeouts) -> None:
        self.name = entry.name
        self.key = VerifierKey.from_text(entry.vkey)
        self.url = entry.url.rstrip("/") + "/add-checkpoint"
        self._http = http
        self.limits = limits
        self._lock = threading.Lock()
        self.known_size: int | None = None

    def cosign(
        self,
        note: Note,
        cp: Checkpoint,
        prove: Callable[[int, int], list[bytes]],
        hint: int,
        deadline: float,
    ) -> NoteSignature:
        """Get this witness's cosignature on ``note`` (the log-signed checkpoint).

        (1) start from the size it last cosigned, or ``hint`` when unknown;
        (2) send old size, consistency proof and checkpoint; (3) on 409, learn
        its size from the body and resend once from there, unless that size
        is ours (it holds another root: a split view) or beyond ours; (4) on
        200, keep only the line signed by its configured key and verify it as
        a tlog-cosignature/v1 on this checkpoint, with a sane timestamp.
        """
        with self._lock:
            old = self.known_size if self.known_size is not None else hint  # (1)
        if old > cp.size:
            old = 0
        for _ in range(3):
            body = format_add_checkpoint(old, prove(old, cp.size), note.to_text())  # (2)
            r = _post(
                self._http, self.url, body, {"content-type": "text/plain"}, self.limits, deadline
            )
            if r.status_code == 409:  # (3)
                size = _parse_size(r)
                with self._lock:
                    self.known_size = size
                if size == old:
                    raise _Refused(f"409: it cosigned another tree of size {size} (split view?)")
                if size > cp.size:
                    raise _Refused(
                        f"409: it cosigned size {size}, beyond this checkpoint's {cp.size}"
                    )
                old = size
                continue
            if r.status_code != 200:
                raise _Refused(f"{r.status_code}: {_first_line(r.text)}")
            sig = self._check(r, note.text)  # (4)
            with self._lock:
                self.known_size = cp.size
            return sig
        raise _Refused("409 again and again: the witness's size keeps changing")

    def _check(self, r: httpx.Response, body: str) -> NoteSignature:
        try:
            lines = parse_signature_lines(r.content.decode("utf-8"))
        except (UnicodeDecodeError, VerifierError) as e:
            raise _Refused(f"200 with a malformed body ({e})") from e
        mine = [s for s in lines if (s.name, s.key_id) == (self.key.name, self.key.key_id)]
        if len(mine) != 1:
            raise _Refused(f"200 with {len(mine)} cosignatures by its configured key")
        try:
            ts = self.key.verify_note_signature(body, mine[0].signature)
        except VerifierError as e:
            raise _Refused(f"200 with an invalid cosignature ({e})") from e
        if ts is None or ts > time.time() + MAX_CLOCK_SKEW:
            raise _Refused(f"cosignature time {ts} is in the future")
        return mine[0]


def _parse_size(r: httpx.Response) -> int:
    ctype = r.headers.get("content-type", "").split(";")[0].strip()
    text = r.text
    if ctype != TLOG_SIZE or not text.endswith("\n") or not text[:-1].isdigit():
        raise _Refused(f"409 without a {TLOG_SIZE} body: {_first_line(text)!r}")
    return int(text[:-1])


def load_tsa_roots(path: Path) -> list[x509.Certificate]:
    """Read the TSA's trusted roots (PEM); a missing or bad file is a ConfigError."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"tsa: cannot read roots {path} ({e.strerror})") from e
    try:
        return load_roots([data])
    except VerifierError as e:
        raise ConfigError(f"tsa: {path}: {e}") from e


class TsaClient:
    """An RFC 3161 TSA over HTTP (RFC 3161 §3.4): one request per checkpoint."""

    def __init__(
        self,
        cfg: TsaConfig,
        home: Path,
        http: httpx.Client,
        limits: Timeouts,
        name: str = "tsa",
    ) -> None:
        self.name = name
        self.url = cfg.url
        self.roots = load_tsa_roots(home / cfg.roots)
        self._http = http
        self.limits = limits

    def timestamp(self, body: bytes, deadline: float) -> bytes:
        """A verified token over SHA-256 of ``body``.

        (1) build a request for a SHA-256 imprint, with a random nonce and the
        TSA's certificate requested; (2) POST it; (3) take the token from a
        granted response, BER or DER, exactly as the TSA sent it: those bytes
        are the evidence that is stored; (4) verify it (the verifier checks a
        DER normalisation of it): chain to the configured roots at genTime,
        imprint of ``body``, ESS binding, and our nonce (a replayed token fails).
        """
        req = (
            rfc3161_client.TimestampRequestBuilder()  # (1)
            .data(body)
            .hash_algorithm(rfc3161_client.HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        r = _post(  # (2)
            self._http,
            self.url,
            req.as_bytes(),
            {"content-type": TIMESTAMP_QUERY, "accept": TIMESTAMP_REPLY},
            self.limits,
            deadline,
        )
        if r.status_code != 200:
            raise _Refused(f"{r.status_code}: {_first_line(r.text)}")
        try:
            token = response_token(r.content)  # (3)
            verify_timestamp(token, body, self.roots, nonce=req.nonce)  # (4)
        except VerifierError as e:
            raise _Refused(str(e)) from e
        return token

    def timestamp_digest(
        self, digest: bytes, algorithm: str, deadline: float
    ) -> tuple[bytes, TimestampInfo]:
        """A verified token over a precomputed ``digest`` (a hash-tree root) made
        with ``algorithm`` (a hashlib name of :data:`verifier.ers.HASH_OIDS`).

        As :meth:`timestamp`, with the TimeStampReq (RFC 3161 §2.4.1) written
        here, since rfc3161-client only hashes data itself.
        """
        nonce = secrets.randbits(63) | 1 << 62
        req = _timestamp_request(digest, algorithm, nonce)
        r = _post(
            self._http,
            self.url,
            req,
            {"content-type": TIMESTAMP_QUERY, "accept": TIMESTAMP_REPLY},
            self.limits,
            deadline,
        )
        if r.status_code != 200:
            raise _Refused(f"{r.status_code}: {_first_line(r.text)}")
        try:
            token = response_token(r.content)
            info = verify_token(
                token,
                self.roots,
                digest=digest,
                nonce=nonce,
                algorithms={HASH_OIDS[algorithm]: algorithm},
            )
        except VerifierError as e:
            raise _Refused(str(e)) from e
        return token, info


def _timestamp_request(digest: bytes, algorithm: str, nonce: int) -> bytes:
    """``TimeStampReq ::= SEQUENCE { version 1, messageImprint, nonce, certReq TRUE }``
    (RFC 3161 §2.4.1); the hash's AlgorithmIdentifier without parameters (RFC 5754)."""
    alg = der.tlv(0x30, der.encode_oid(HASH_OIDS[algorithm]))
    imprint = der.tlv(0x30, alg + der.tlv(0x04, digest))
    n = nonce.to_bytes((nonce.bit_length() + 8) // 8, "big")
    body = der.tlv(0x02, b"\x01") + imprint + der.tlv(0x02, n) + der.tlv(0x01, b"\xff")
    return der.tlv(0x30, body)


def _tsa_clients(config: Config, http: httpx.Client, limits: Timeouts) -> list[TsaClient]:
    """One client per configured TSA, named ``tsa`` when alone, else ``tsa URL``."""
    alone = len(config.tsas) == 1
    return [
        TsaClient(t, config.home, http, limits, "tsa" if alone else f"tsa {t.url}")
        for t in config.tsas
    ]


@dataclass
class _Round:
    """What one anchoring round has collected so far."""

    cosignatures: dict[str, NoteSignature] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, bytes] = field(default_factory=dict)


class Anchor:
    """Collects cosignatures and a token for a ledger's checkpoints (see module doc)."""

    def __init__(
        self,
        config: Config,
        prove: Callable[[int, int], list[bytes]],
        limits: Timeouts | None = None,
    ) -> None:
        self.limits = limits or Timeouts()
        self.quorum = config.quorum
        self._prove = prove
        self._http = httpx.Client(
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            follow_redirects=False,
        )
        self.witnesses = [WitnessClient(w, self._http, self.limits) for w in config.witnesses]
        self.tsas = _tsa_clients(config, self._http, self.limits)
        self.tsa_quorum = config.tsa_quorum
        self._pool = ThreadPoolExecutor(
            max_workers=len(self.witnesses) + len(self.tsas) + 1, thread_name_prefix="anchor"
        )
        self.last_error: str | None = None
        self.observer = Observer()
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.witnesses) or bool(self.tsas)

    @property
    def tsa_roots(self) -> list[x509.Certificate]:
        """The roots of every configured TSA."""
        return [r for t in self.tsas for r in t.roots]

    def set_limits(self, limits: Timeouts) -> None:
        """Change the network limits of later rounds."""
        self.limits = limits
        for w in self.witnesses:
            w.limits = limits
        for t in self.tsas:
            t.limits = limits

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.close()

    def anchor(self, row: CheckpointRow, published: int) -> Publication:
        """Anchor the log-signed checkpoint ``row``; raise :class:`AnchoringError`.

        ``published`` is the size of the latest published checkpoint, the
        first guess for what each witness last cosigned.
        """
        note = parse_note(row.note)
        cp = Checkpoint.from_text(note.text)
        deadline = time.monotonic() + self.limits.round
        state = _Round()
        futures: dict[Future[Any], str] = {}
        calls: list[tuple[str, Callable[[], Any]]] = [
            (w.name, partial(w.cosign, note, cp, self._prove, published, deadline))
            for w in self.witnesses
        ]
        for t in self.tsas:
            calls.append((t.name, partial(t.timestamp, note.text.encode(), deadline)))
        for name, call in calls:
            # A hung server keeps an earlier round's request open until that round's
            # deadline: never stack a second one on it (it would exhaust the pool).
            with self._lock:
                if name in self._in_flight:
                    state.reasons[name] = "unreachable: an earlier request is still open"
                    continue
                self._in_flight.add(name)
            futures[self._pool.submit(self._call, name, call)] = name
        pending = set(futures)
        met_at: float | None = None
        while pending:
            limit = deadline if met_at is None else min(deadline, met_at + self.limits.grace)
            done, pending = wait(
                pending, timeout=max(0.0, limit - time.monotonic()), return_when=FIRST_COMPLETED
            )
            for fut in done:
                self._collect(futures[fut], fut, state)
            if met_at is None and self._met(state):
                met_at = time.monotonic()
            if time.monotonic() >= limit:
                break
        for fut in pending:
            state.reasons[futures[fut]] = "no answer in time"
        for name, reason in state.reasons.items():
            if reason not in ("cosigned", "timestamped"):
                kind = "tsa" if any(t.name == name for t in self.tsas) else "witness"
                self.observer.anchor_failed(kind, name)
        if not self._met(state):
            msg = self._failure(cp.size, state)
            self.last_error = msg
            log.info("%s", msg)  # raised too: the caller reports it (CLI, sealer log)
            raise AnchoringError(msg, cp.size, state.reasons)
        self.last_error = None
        order = [w.name for w in self.witnesses if w.name in state.cosignatures]
        published_note = note.with_signatures(state.cosignatures[n] for n in order)
        tokens = [state.tokens[t.name] for t in self.tsas if t.name in state.tokens]
        return Publication(
            size=row.size,
            root=row.root,
            note=published_note.to_text(),
            time=format_time(datetime.now(UTC)),
            token=encode_token_set(tokens) if tokens else None,
        )

    def _call(self, name: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        finally:
            with self._lock:
                self._in_flight.discard(name)

    def _collect(self, name: str, fut: Future[Any], state: _Round) -> None:
        try:
            result = fut.result()
        except (_Refused, _Unreachable) as e:
            kind = "refused" if isinstance(e, _Refused) else "unreachable"
            state.reasons[name] = f"{kind}: {e}"
            log.info("anchoring: %s %s: %s", name, kind, e)
            return
        except Exception as e:  # a bug or an unexpected library error: count it as a no
            state.reasons[name] = f"failed: {type(e).__name__}: {e}"
            log.exception("anchoring: %s failed", name)
            return
        if any(t.name == name for t in self.tsas):
            state.tokens[name] = result
            state.reasons[name] = "timestamped"
        else:
            state.cosignatures[name] = result
            state.reasons[name] = "cosigned"

    def _met(self, state: _Round) -> bool:
        witnesses_ok = len(state.cosignatures) >= self.quorum
        return witnesses_ok and len(state.tokens) >= self.tsa_quorum

    def _failure(self, size: int, state: _Round) -> str:
        parts = []
        if self.witnesses:
            parts.append(
                f"{len(state.cosignatures)} of {len(self.witnesses)} witnesses cosigned, "
                f"quorum is {self.quorum}"
            )
        if len(state.tokens) < self.tsa_quorum:
            if len(self.tsas) == 1:
                parts.append("no valid timestamp token")
            else:
                parts.append(
                    f"{len(state.tokens)} of {len(self.tsas)} TSAs timestamped, "
                    f"TSA quorum is {self.tsa_quorum}"
                )
        detail = "; ".join(f"{k}: {v}" for k, v in state.reasons.items())
        return f"checkpoint {size} not published: {', '.join(parts)} ({detail})"


def audit_publications(ledger: Ledger) -> int:
    """Re-verify every published checkpoint; return how many; raise AuditError.

    (1) the published note verifies with the log key and origin, and its body
    is the body of the sealed checkpoint of that size; (2) every cosignature
    line from a currently configured witness verifies over that body (lines
    from other keys are ignored: the policy may have changed since); (3) when
    TSAs are configured, every stored token (each of a token set) verifies
    over that body against the roots of one of them.
    """
    from verifier.checkpoint import open_checkpoint
    from verifier.cms import split_token_set

    cfg = ledger.config
    keys = {(w.key.name, w.key.key_id): w.key for w in ledger.anchor.witnesses}
    roots = ledger.anchor.tsa_roots
    count = 0
    after = -1
    while True:
        page = ledger.store.publication_page(after, 1000)
        for pub in page:
            where = f"publication {pub.size}"
            try:
                signed = open_checkpoint(pub.note, [ledger.verifier_key], cfg.origin)  # (1)
                if pub.sealed is None:
                    raise AuditError(
                        f"{where}: no sealed checkpoint of that size (the checkpoint was removed)"
                    )
                if parse_note(pub.sealed.note).text != signed.note.text:
                    raise AuditError(f"{where}: not the body of a sealed checkpoint")
                for sig in signed.note.signatures:  # (2)
                    key = keys.get((sig.name, sig.key_id))
                    if key is not None:
                        key.verify_note_signature(signed.note.text, sig.signature)
                if pub.token is not None and roots:  # (3)
                    for token in split_token_set(pub.token):
                        verify_timestamp(token, signed.note.text.encode(), roots)
            except VerifierError as e:
                raise AuditError(f"{where}: {e}") from e
            count += 1
        if len(page) < 1000:
            return count
        after = page[-1].size


def trust_anchoring(ledger: Ledger) -> dict[str, Any]:
    """The anchoring part of the ledger's ``evidence-trust/v1`` trust file.

    ``{"witnesses": {"quorum": int, "keys": [{"name": str, "vkey": str}]},
    "tsa_roots": [PEM str, ...]}``, one PEM certificate per ``tsa_roots`` item,
    for one TSA (or none); for several, ``tsa_roots`` is empty and ``"tsas":
    {"quorum": int, "authorities": [{"name": URL, "roots": [PEM str, ...]}]}``
    says which and how many.
    """
    cfg = ledger.config
    part: dict[str, Any] = {
        "witnesses": {
            "quorum": cfg.quorum,
            "keys": [{"name": w.name, "vkey": w.vkey} for w in cfg.witnesses],
        },
        "tsa_roots": _pem_roots(cfg.home, cfg.tsa) if len(cfg.tsas) == 1 else [],
    }
    if len(cfg.tsas) > 1:
        authorities = [{"name": t.url, "roots": _pem_roots(cfg.home, t)} for t in cfg.tsas]
        part["tsas"] = {"quorum": cfg.tsa_quorum, "authorities": authorities}
    return part


def _pem_roots(home: Path, tsa: TsaConfig | None) -> list[str]:
    from cryptography.hazmat.primitives.serialization import Encoding

    if tsa is None:
        return []
    return [c.public_bytes(Encoding.PEM).decode("ascii") for c in load_tsa_roots(home / tsa.roots)]
