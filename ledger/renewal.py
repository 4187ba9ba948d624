"""Timestamp renewal: checkpoint tokens that outlive their certificates and algorithms.

Every token of a published checkpoint starts an RFC 4998 evidence record
(:mod:`verifier.ers`) whose data object is the checkpoint body. A token
counts only while its TSA certificate is unexpired and its hash algorithms
are not retired; :func:`renew` extends every record whose newest timestamp
will stop counting within the renewal window:

- *timestamp renewal* (RFC 4998 §5.2): a new archive timestamp over the hash
  of the newest token, in the record's hash algorithm;
- *hash-tree renewal*, when that algorithm is retired within the window: a
  new ArchiveTimeStampChain whose first timestamp covers, with the
  configured ``renewal.hash``, the checkpoint body and every chain so far.

All records renewed in one run share one new token per hash algorithm,
over a hash tree (§4.2) of their hashed values (records whose newest
timestamp is the same token share one leaf); each record keeps its reduced
path. The token comes from the first configured TSA that answers with a
valid token whose own certificate outlives the window. Renewals are stored
append-only (``renewal_batches``, ``renewals``) in one transaction, so a run
is durable or absent; a second run finds nothing due (idempotent). A record
whose newest timestamp has already stopped counting is reported as lapsed
and left alone: a renewal now would leave a gap that the verifier refuses.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ledger.errors import LedgerError
from ledger.events import format_time
from ledger.storage.base import RenewalBatch, RenewalRow
from verifier.cms import split_token_set
from verifier.errors import Error as VerifierError
from verifier.ers import (
    encode_ats,
    encode_hashtree,
    encode_record,
    encode_sequence,
    hash_tree,
    hash_tree_renewal_leaf,
    renewal_leaf,
    tree_root,
)
from verifier.note import parse_note
from verifier.timestamp import TimestampInfo, token_facts
from verifier.trust import parse_utc

if TYPE_CHECKING:
    from ledger.core import Ledger

__all__ = ["RenewalError", "RenewalReport", "evidence_records", "renew"]

log = logging.getLogger("evidence_ledger.renewal")


class RenewalError(LedgerError):
    """Records were due and could not be renewed (no TSA gave a usable token)."""


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Newest:
    """The newest timestamp of a record: when, by whom, until when, relying on what."""

    gen_time: datetime
    not_after: datetime
    tsa: str
    algorithms: tuple[str, ...]


@dataclass
class _Line:
    """The evidence record of one token of one published checkpoint.

    Only what deciding needs is computed for every record (its newest
    timestamp); the body and chains are built for the records renewed."""

    size: int
    line: int
    note: str
    token: bytes
    renewals: list[tuple[RenewalRow, RenewalBatch]]
    newest_token: bytes
    newest: _Newest
    first_algorithm: str

    @property
    def seq(self) -> int:
        """Archive timestamps after the original token."""
        return self.renewals[-1][0].seq if self.renewals else 0

    @property
    def body(self) -> bytes:
        return parse_note(self.note).text.encode("utf-8")

    @property
    def algorithms(self) -> list[str]:
        """The hash algorithm of each chain."""
        out = [self.first_algorithm]
        for row, batch in self.renewals:
            if row.chain == len(out):
                out.append(batch.algorithm)
        return out

    @property
    def chains(self) -> list[list[bytes]]:
        """Encoded ArchiveTimeStamps per chain."""
        chains = [[encode_ats(self.token)]]
        for row, batch in self.renewals:
            if row.chain == len(chains):
                chains.append([])
            chains[row.chain].append(
                encode_ats(batch.token, algorithm=batch.algorithm, hashtree=row.hashtree)
            )
        return chains

    @property
    def record(self) -> bytes:
        return encode_record(self.chains, self.algorithms)

    @property
    def name(self) -> str:
        return f"checkpoint {self.size} token {self.line}"


@dataclass
class RenewalReport:
    """What one run found and did."""

    checked: int = 0
    renewed: int = 0
    due: int = 0
    lapsed: list[str] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    next_due: str | None = None
    """When the earliest record not renewed now becomes due."""

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "due": self.due,
            "renewed": self.renewed,
            "lapsed": self.lapsed,
            "batches": self.batches,
            "next_due": self.next_due,
        }


_facts_cache: dict[bytes, TimestampInfo] = {}
_CACHE_MAX = 200_000


def _facts(token: bytes) -> TimestampInfo:
    """Facts of an original token (verified when it was obtained), cached by digest."""
    key = hashlib.sha256(token).digest()
    info = _facts_cache.get(key)
    if info is None:
        info = token_facts(token)
        if len(_facts_cache) >= _CACHE_MAX:
            _facts_cache.clear()
        _facts_cache[key] = info
    return info


def _lines(ledger: Ledger, size: int | None = None) -> list[_Line]:
    """The evidence record of every token of every published checkpoint (or of one)."""
    store = ledger.store
    batches = {b.batch: b for b in store.renewal_batches()}
    rows: dict[tuple[int, int], list[RenewalRow]] = defaultdict(list)
    for r in store.renewals(size):
        rows[(r.size, r.line)].append(r)
    if size is None:
        pubs = store.publications()
    else:
        one = store.publication(size)
        pubs = [one] if one is not None else []
    out = []
    now = datetime.now(UTC)
    for pub in pubs:
        if pub.token is None:
            continue
        for j, token in enumerate(_split(pub.token)):
            renewed = rows.get((pub.size, j), [])
            if renewed:  # its facts are those of its newest renewal, below
                newest = _Newest(now, now, "", ())
            else:
                info = _facts(token)
                assert info.tsa_not_after is not None
                newest = _Newest(
                    info.gen_time, info.tsa_not_after, info.tsa, (info.hash_algorithm,)
                )
            line = _Line(
                size=pub.size,
                line=j,
                note=pub.note,
                token=token,
                renewals=[],
                newest_token=token,
                newest=newest,
                # Anchoring accepts SHA-256 imprints only (verify_timestamp).
                first_algorithm="sha256",
            )
            for r in renewed:
                b = batches[r.batch]
                line.renewals.append((r, b))
                line.newest_token = b.token
                line.newest = _Newest(
                    parse_utc(b.gen_time, "renewal gen_time"),
                    parse_utc(b.not_after, "renewal not_after"),
                    b.tsa,
                    (b.algorithm,),
                )
            out.append(line)
    return out


def _split(data: bytes) -> list[bytes]:
    """The tokens of a stored timestamp. The ledger wrote it: one token (a
    ContentInfo, whose first component is an OBJECT IDENTIFIER) or a DER token
    set; only a set needs decoding."""
    n = data[1] & 0x7F if len(data) > 2 and data[1] & 0x80 else 0
    if len(data) > 2 + n and data[0] == 0x30 and data[2 + n] == 0x06:
        return [data]
    return split_token_set(data)


def evidence_records(ledger: Ledger, size: int, token: bytes | None = None) -> list[bytes]:
    """The evidence records of checkpoint ``size`` whose tokens were renewed, by
    token position; with ``token``, only those starting with one of its tokens."""
    if token is not None:
        pub = ledger.store.publication(size)
        if pub is None or pub.token != token:
            return []
    return [line.record for line in _lines(ledger, size) if line.seq > 0]


def _retired_before(
    algorithms: Sequence[str], t: datetime, retired: dict[str, datetime]
) -> datetime | None:
    times = [retired[a] for a in algorithms if a in retired and retired[a] <= t]
    return min(times) if times else None


def renew(
    ledger: Ledger,
    *,
    now: datetime | None = None,
    window: timedelta | None = None,
    dry_run: bool = False,
) -> RenewalReport:
    """Renew every record due within the window; see the module docstring.

    (1) read every record's newest timestamp; (2) a record is lapsed when it
    no longer counts now, due when it stops counting within the window
    (certificate expiry or algorithm retirement); (3) group the due records
    by kind (timestamp or hash-tree renewal) and hash algorithm; for each
    group (4) hash what is renewed, build one hash tree, (5) get a token
    over its root from a TSA whose certificate outlives the window, (6)
    check, with the verifier's code, that each record's path leads to that
    root and that the token was made while the record's newest timestamp
    still counted, (7) store the token and every record's new archive
    timestamp in one transaction.
    """
    cfg = ledger.config.renewal
    now = now or datetime.now(UTC)
    horizon = now + (window if window is not None else timedelta(days=cfg.window_days))
    retired = cfg.retired_at()
    report = RenewalReport()
    groups: dict[tuple[bool, str], list[_Line]] = defaultdict(list)
    upcoming: list[datetime] = []
    for line in _lines(ledger):  # (1)
        report.checked += 1
        newest = line.newest
        gone = _retired_before(newest.algorithms, horizon, retired)
        ends = min(newest.not_after, gone) if gone is not None else newest.not_after
        if ends <= now:  # (2)
            report.lapsed.append(
                f"{line.name}: its newest timestamp ({newest.tsa}, {_when(newest.gen_time)}) "
                f"stopped counting at {_when(ends)}; a renewal now would leave a gap"
            )
            continue
        if ends > horizon:
            upcoming.append(ends - (horizon - now))
            continue
        chain_alg = line.algorithms[-1]
        tree_gone = _retired_before((chain_alg,), horizon, retired) is not None
        groups[(tree_gone, cfg.hash if tree_gone else chain_alg)].append(line)  # (3)
        report.due += 1
    report.next_due = _when(min(upcoming)) if upcoming else None
    if dry_run or not groups:
        return report
    if not ledger.anchor.tsas:
        raise RenewalError(f"renewal: {report.due} records are due and no TSA is configured")
    for (tree_renewal, alg), lines in groups.items():
        _renew_group(ledger, lines, alg, tree_renewal, now, horizon, retired, report)
    return report


def _renew_group(
    ledger: Ledger,
    lines: list[_Line],
    alg: str,
    tree_renewal: bool,
    now: datetime,
    horizon: datetime,
    retired: dict[str, datetime],
    report: RenewalReport,
) -> None:
    """Steps (4) to (7) of :func:`renew` for one group."""
    by_leaf: dict[bytes, list[_Line]] = defaultdict(list)
    for line in lines:  # (4)
        if tree_renewal:
            leaf = hash_tree_renewal_leaf(alg, line.body, encode_sequence(line.chains))
        else:
            leaf = renewal_leaf(alg, line.newest_token)
        by_leaf[leaf].append(line)
    leaves = list(by_leaf)
    root, paths = hash_tree(alg, leaves)
    token, info = _stamp(ledger, root, alg, horizon, retired)  # (5)
    assert info.tsa_not_after is not None
    batch_id = hashlib.sha256(token).hexdigest()
    rows = []
    for leaf, path in zip(leaves, paths, strict=True):
        if tree_root(alg, leaf, path) != root:  # (6)
            raise RenewalError(
                f"renewal: the hash tree does not lead to its root (leaf {leaf.hex()})"
            )
        hashtree = encode_hashtree(path)
        for line in by_leaf[leaf]:
            if not line.newest.gen_time <= info.gen_time <= line.newest.not_after:
                raise RenewalError(
                    f"renewal: {line.name}: the new token ({_when(info.gen_time)}) was not made "
                    f"while its newest timestamp counted (until {_when(line.newest.not_after)})"
                )
            chain = len(line.chains) - 1 + int(tree_renewal)
            rows.append(RenewalRow(line.size, line.line, line.seq + 1, chain, batch_id, hashtree))
    batch = RenewalBatch(
        batch=batch_id,
        time=format_time(now),
        algorithm=alg,
        token=token,
        gen_time=format_time(info.gen_time),
        not_after=format_time(info.tsa_not_after),
        tsa=info.tsa,
        hash_tree_renewal=tree_renewal,
    )
    added = ledger.store.add_renewal(batch, rows)  # (7)
    report.renewed += added
    report.batches.append(
        {
            "kind": "hash-tree" if tree_renewal else "timestamp",
            "algorithm": alg,
            "records": added,
            "leaves": len(leaves),
            "tsa": info.tsa,
            "gen_time": _when(info.gen_time),
            "valid_until": _when(info.tsa_not_after),
        }
    )
    log.info(
        "renewal: %d records renewed (%s, %s) by %s at %s",
        added,
        "hash-tree" if tree_renewal else "timestamp",
        alg,
        info.tsa,
        _when(info.gen_time),
    )


def _stamp(
    ledger: Ledger, root: bytes, alg: str, horizon: datetime, retired: dict[str, datetime]
) -> tuple[bytes, TimestampInfo]:
    """A token over ``root`` from the first configured TSA whose answer verifies
    and whose certificate and algorithms outlive the window."""
    from ledger.anchoring import _Refused, _Unreachable

    anchor = ledger.anchor
    deadline = time.monotonic() + anchor.limits.round
    reasons = []
    for tsa in anchor.tsas:
        try:
            token, info = tsa.timestamp_digest(root, alg, deadline)
        except (_Refused, VerifierError) as e:
            reasons.append(f"{tsa.name}: refused: {e}")
            continue
        except _Unreachable as e:
            reasons.append(f"{tsa.name}: unreachable: {e}")
            continue
        assert info.tsa_not_after is not None
        if info.tsa_not_after <= horizon:
            reasons.append(
                f"{tsa.name}: its certificate expires at {_when(info.tsa_not_after)}, "
                "within the renewal window"
            )
            continue
        gone = _retired_before((alg, info.hash_algorithm), horizon, retired)
        if gone is not None:
            reasons.append(f"{tsa.name}: its token relies on an algorithm retired at {_when(gone)}")
            continue
        return token, info
    raise RenewalError("renewal: no TSA gave a usable token (" + "; ".join(reasons) + ")")
