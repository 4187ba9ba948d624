"""RFC 4998 Evidence Records: timestamps that outlive their certificates and algorithms.

A checkpoint's RFC 3161 token proves the checkpoint existed at its genTime,
for as long as the token itself can be trusted: its TSA certificate
unexpired (an expired certificate is no longer revoked when its key leaks)
and its hash algorithms unbroken. Before either ends, the ledger *renews*
the token: a new timestamp, by a TSA whose certificate lasts longer, over a
hash of the earlier token (timestamp renewal, RFC 4998 §5.2) or, when the
hash algorithm is being retired, over a new hash of the checkpoint and of
everything so far (hash-tree renewal, §5.2). Each checkpoint token and its
renewals form one ``EvidenceRecord`` (§3.1), written in DER so that any ERS
implementation can read it::

    EvidenceRecord ::= SEQUENCE {
      version                   INTEGER { v1(1) },
      digestAlgorithms          SEQUENCE OF AlgorithmIdentifier,
      cryptoInfos               [0] CryptoInfos OPTIONAL,
      encryptionInfo            [1] EncryptionInfo OPTIONAL,
      archiveTimeStampSequence  ArchiveTimeStampSequence }
    ArchiveTimeStampSequence ::= SEQUENCE OF ArchiveTimeStampChain
    ArchiveTimeStampChain    ::= SEQUENCE OF ArchiveTimeStamp
    ArchiveTimeStamp ::= SEQUENCE {
      digestAlgorithm [0] AlgorithmIdentifier OPTIONAL,
      attributes      [1] Attributes OPTIONAL,
      reducedHashtree [2] SEQUENCE OF PartialHashtree OPTIONAL,
      timeStamp       ContentInfo }
    PartialHashtree ::= SEQUENCE OF OCTET STRING

(the module's tags are IMPLICIT). The archived data object is the
checkpoint body, the text the log signs; the record's first
ArchiveTimeStamp is the checkpoint's own token as the TSA sent it (its
imprint is the data object's hash, so it needs no hash tree). One renewal
timestamp covers many records through a hash tree (§4.2), each record
carrying its reduced path (:func:`hash_tree`, :func:`tree_root`).

:func:`verify_record` is the §5.3 verification with the check that makes
the chain worth anything: each timestamp was made while the one before it
was still trustworthy, and the last one is trustworthy at the verification
time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from verifier import der
from verifier.der import CONTEXT, INTEGER, OCTET_STRING, SEQUENCE, UNIVERSAL, Element
from verifier.errors import MalformedError, VerificationError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "HASH_OIDS",
    "MAX_RECORD_SIZE",
    "ArchiveTimeStamp",
    "EvidenceRecord",
    "RecordResult",
    "Stamp",
    "encode_ats",
    "encode_hashtree",
    "encode_record",
    "encode_sequence",
    "hash_tree",
    "hash_tree_renewal_leaf",
    "parse_record",
    "renewal_leaf",
    "tree_root",
    "verify_record",
]

HASH_OIDS = {
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
    "sha3-256": "2.16.840.1.101.3.4.2.8",
    "sha3-384": "2.16.840.1.101.3.4.2.9",
    "sha3-512": "2.16.840.1.101.3.4.2.10",
}
"""Hash algorithms a record's hash trees may use, by hashlib name."""
_NAMES = {oid: name for name, oid in HASH_OIDS.items()}
MAX_RECORD_SIZE = 1 << 20
MAX_CHAINS = 64
MAX_STAMPS = 1024
"""Archive timestamps in one record, over all its chains."""
MAX_TREE_DEPTH = 64
MAX_LIST = 64


def _fail(what: str) -> MalformedError:
    return MalformedError(f"evidence record: {what}")


def _hash(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


# ---------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ArchiveTimeStamp:
    """One ArchiveTimeStamp (RFC 4998 §4.1), its parts as encoded."""

    raw: bytes
    digest_algorithm: str | None
    """hashlib name of the ``digestAlgorithm`` field; None when absent (then the
    token's imprint algorithm is the tree's, §4.1)."""
    reduced_hashtree: tuple[tuple[bytes, ...], ...]
    time_stamp: bytes
    """The ``timeStamp`` ContentInfo (an RFC 3161 token) exactly as encoded."""


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """A parsed EvidenceRecord (RFC 4998 §3.1)."""

    raw: bytes
    digest_algorithms: tuple[str, ...]
    chains: tuple[tuple[ArchiveTimeStamp, ...], ...]
    chain_raws: tuple[bytes, ...]
    """Each ArchiveTimeStampChain as encoded (hash-tree renewal hashes them)."""

    @property
    def first_token(self) -> bytes:
        """The token of the first archive timestamp: the checkpoint's own."""
        return self.chains[0][0].time_stamp

    @property
    def renewals(self) -> int:
        """Archive timestamps after the first."""
        return sum(len(c) for c in self.chains) - 1


# ---------------------------------------------------------------- encoding


def _algorithm_identifier(name: str, tag: int = 0x30) -> bytes:
    """AlgorithmIdentifier of a hash, parameters absent (RFC 5754 §2)."""
    oid = HASH_OIDS.get(name)
    if oid is None:
        raise _fail(f"unsupported hash algorithm {name!r}")
    return der.tlv(tag, der.encode_oid(oid))


def encode_hashtree(reduced: Sequence[Sequence[bytes]]) -> bytes:
    """The ``reducedHashtree`` contents: each PartialHashtree as a SEQUENCE OF OCTET STRING."""
    return b"".join(der.tlv(0x30, b"".join(der.tlv(0x04, h) for h in level)) for level in reduced)


def encode_ats(
    time_stamp: bytes,
    *,
    algorithm: str | None = None,
    reduced: Sequence[Sequence[bytes]] = (),
    hashtree: bytes = b"",
) -> bytes:
    """An ArchiveTimeStamp: optional ``[0]`` algorithm and ``[2]`` reduced tree
    (given as lists, or already encoded by :func:`encode_hashtree`), the token."""
    parts = b""
    if algorithm is not None:
        parts += _algorithm_identifier(algorithm, 0xA0)
    tree = hashtree or encode_hashtree(reduced)
    if tree:
        parts += der.tlv(0xA2, tree)
    return der.tlv(0x30, parts + time_stamp)


def encode_sequence(chains: Sequence[Sequence[bytes]]) -> bytes:
    """An ArchiveTimeStampSequence from the encoded ArchiveTimeStamps of each chain."""
    return der.tlv(0x30, b"".join(der.tlv(0x30, b"".join(c)) for c in chains))


def encode_record(chains: Sequence[Sequence[bytes]], algorithms: Sequence[str]) -> bytes:
    """An EvidenceRecord (v1) from its chains and the hash algorithms they use."""
    algs = b"".join(_algorithm_identifier(a) for a in dict.fromkeys(algorithms))
    body = der.tlv(0x02, b"\x01") + der.tlv(0x30, algs) + encode_sequence(chains)
    return der.tlv(0x30, body)


# ---------------------------------------------------------------- hash trees


def _node(name: str, values: Sequence[bytes]) -> bytes:
    """RFC 4998 §4.2 step 4: hash of the values concatenated in binary ascending order."""
    return _hash(name, b"".join(sorted(values)))


Path = tuple[tuple[bytes, ...], ...]
"""A reduced hash tree: the PartialHashtree lists, the leaf's first."""


def hash_tree(name: str, leaves: Sequence[bytes]) -> tuple[bytes, list[Path]]:
    """The root over ``leaves`` and, for each leaf, its reduced hash tree (§4.2).

    A binary tree: pairs are hashed in ascending order of their values; a
    leaf without a partner is hashed alone (its first list has one value);
    a node above the leaves without a partner moves up unchanged, with no
    list for that level. One leaf is its own root, with no reduced tree.
    """
    if not leaves:
        raise ValueError("hash_tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0], [()]
    paths: list[list[tuple[bytes, ...]]] = [[] for _ in leaves]
    members: list[list[int]] = []
    level: list[bytes] = []
    for i in range(0, len(leaves), 2):  # the first level: every leaf is in a list
        pair = tuple(sorted(leaves[i : i + 2]))
        for j in range(i, min(i + 2, len(leaves))):
            paths[j].append(pair)
        members.append(list(range(i, min(i + 2, len(leaves)))))
        level.append(_node(name, pair))
    while len(level) > 1:
        above: list[bytes] = []
        grouped: list[list[int]] = []
        for i in range(0, len(level), 2):
            if i + 1 == len(level):
                above.append(level[i])
                grouped.append(members[i])
                continue
            left, right = level[i], level[i + 1]
            for leaf in members[i]:
                paths[leaf].append((right,))
            for leaf in members[i + 1]:
                paths[leaf].append((left,))
            above.append(_node(name, (left, right)))
            grouped.append(members[i] + members[i + 1])
        level, members = above, grouped
    return level[0], [tuple(p) for p in paths]


def tree_root(name: str, leaf: bytes, reduced: Sequence[Sequence[bytes]]) -> bytes:
    """RFC 4998 §4.3 steps 2-3: from a leaf up its reduced hash tree to the root.

    The leaf must be in the first list; each list is hashed with the value
    computed from the one below (the first list holds the leaf itself).
    """
    if not reduced:
        return leaf
    if leaf not in reduced[0]:
        raise VerificationError(
            "evidence record: the hashed value is not in the first list of the reduced hash tree"
        )
    h = _node(name, reduced[0])
    for level in reduced[1:]:
        h = _node(name, (*level, h))
    return h


def renewal_leaf(name: str, previous: ArchiveTimeStamp | bytes) -> bytes:
    """Timestamp renewal (§5.2): the hash of the previous ``timeStamp`` field as encoded."""
    token = previous.time_stamp if isinstance(previous, ArchiveTimeStamp) else previous
    return _hash(name, token)


def hash_tree_renewal_leaf(name: str, data: bytes, prior_sequence: bytes) -> bytes:
    """Hash-tree renewal (§5.2 steps 2-3): ``H(h(d) ‖ ha)`` with ``ha`` the hash of
    the encoded ArchiveTimeStampSequence so far, the two in binary ascending order."""
    return _node(name, (_hash(name, data), _hash(name, prior_sequence)))


# ---------------------------------------------------------------- parsing


def _children(e: Element, what: str, low: int, high: int) -> tuple[Element, ...]:
    if not e.constructed or not low <= len(e.children) <= high:
        raise _fail(f"{what}: expected {low} to {high} components")
    return e.children


def _hash_name(e: Element, what: str) -> str:
    """A hash AlgorithmIdentifier's hashlib name (its SEQUENCE or an implicit tag)."""
    parts = _children(e, what, 1, 2)
    oid = der.oid_text(parts[0], f"evidence record: {what}")
    if len(parts) == 2 and parts[1].raw != b"\x05\x00":
        raise _fail(f"{what}: unexpected parameters")
    name = _NAMES.get(oid)
    if name is None:
        raise _fail(f"{what}: hash algorithm {oid} is not supported")
    return name


def _ats(e: Element, index: str) -> ArchiveTimeStamp:
    what = f"archive timestamp {index}"
    if not e.is_(UNIVERSAL, SEQUENCE, True):
        raise _fail(f"{what}: not a SEQUENCE")
    fields = list(_children(e, what, 1, 4))
    algorithm = None
    reduced: list[tuple[bytes, ...]] = []
    if fields[0].is_(CONTEXT, 0, True):
        algorithm = _hash_name(fields.pop(0), f"{what} digestAlgorithm")
    if fields and fields[0].is_(CONTEXT, 1, True):
        fields.pop(0)  # attributes: not covered by any timestamp; ignored (§4.1)
    if fields and fields[0].is_(CONTEXT, 2, True):
        levels = fields.pop(0).children
        if not levels or len(levels) > MAX_TREE_DEPTH:
            raise _fail(f"{what}: reduced hash tree of {len(levels)} lists")
        for level in levels:
            values = _children(level, f"{what} partial hash tree", 1, MAX_LIST)
            if not level.is_(UNIVERSAL, SEQUENCE, True) or not all(
                v.is_(UNIVERSAL, OCTET_STRING, False) for v in values
            ):
                raise _fail(f"{what}: a partial hash tree is not a SEQUENCE OF OCTET STRING")
            reduced.append(tuple(v.value for v in values))
    if len(fields) != 1 or not fields[0].is_(UNIVERSAL, SEQUENCE, True):
        raise _fail(f"{what}: expected a timeStamp ContentInfo as the last component")
    return ArchiveTimeStamp(e.raw, algorithm, tuple(reduced), fields[0].raw)


def parse_record(data: bytes) -> EvidenceRecord:
    """Parse an EvidenceRecord (DER; its tokens may be BER as their TSAs sent them).

    Strict about the structure: version 1, known hash algorithms, at least
    one chain of at least one archive timestamp, bounded sizes; an
    ``encryptionInfo`` is refused (the data object is the checkpoint body,
    never encrypted), ``cryptoInfos`` and attributes are ignored, as they
    are protected by no timestamp.
    """
    if len(data) > MAX_RECORD_SIZE:
        raise _fail(f"{len(data)} bytes, limit {MAX_RECORD_SIZE}")
    top = der.decode(data, "evidence record", ber=True)
    if not top.is_(UNIVERSAL, SEQUENCE, True):
        raise _fail("not a SEQUENCE")
    fields = list(_children(top, "record", 3, 5))
    version = fields.pop(0)
    if not version.is_(UNIVERSAL, INTEGER, False) or version.value != b"\x01":
        raise _fail("version is not v1(1)")
    algs = fields.pop(0)
    if not algs.is_(UNIVERSAL, SEQUENCE, True) or not algs.children:
        raise _fail("digestAlgorithms is not a non-empty SEQUENCE OF AlgorithmIdentifier")
    names = tuple(_hash_name(a, "digestAlgorithms") for a in algs.children)
    if fields and fields[0].is_(CONTEXT, 0, True):
        fields.pop(0)
    if fields and fields[0].is_(CONTEXT, 1, True):
        raise _fail("encryptionInfo is not supported: the checkpoint body is never encrypted")
    if len(fields) != 1 or not fields[0].is_(UNIVERSAL, SEQUENCE, True):
        raise _fail("expected an ArchiveTimeStampSequence as the last component")
    chain_elements = fields[0].children
    if not chain_elements or len(chain_elements) > MAX_CHAINS:
        raise _fail(f"{len(chain_elements)} chains, expected 1 to {MAX_CHAINS}")
    chains = []
    total = 0
    for c, chain in enumerate(chain_elements):
        if not chain.is_(UNIVERSAL, SEQUENCE, True) or not chain.children:
            raise _fail(f"chain {c} is not a non-empty ArchiveTimeStampChain")
        total += len(chain.children)
        if total > MAX_STAMPS:
            raise _fail(f"more than {MAX_STAMPS} archive timestamps")
        chains.append(tuple(_ats(a, f"{c}.{i}") for i, a in enumerate(chain.children)))
    return EvidenceRecord(
        raw=data,
        digest_algorithms=names,
        chains=tuple(chains),
        chain_raws=tuple(c.raw for c in chain_elements),
    )


# ---------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class Stamp:
    """What one verified archive timestamp says (see :func:`verify_record`)."""

    gen_time: datetime
    tsa: str
    not_after: datetime
    """When the certificate of the TSA that made it expires."""
    algorithms: tuple[str, ...]
    """Hash algorithms it relies on: its tree's and its imprint's."""


@dataclass(frozen=True, slots=True)
class RecordResult:
    """A record that verified: every timestamp in order, first to last."""

    stamps: tuple[Stamp, ...]

    @property
    def last(self) -> Stamp:
        return self.stamps[-1]


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _retired_by(
    algorithms: Sequence[str], t: datetime, retired: Mapping[str, datetime]
) -> str | None:
    for a in algorithms:
        since = retired.get(a)
        if since is not None and since <= t:
            return f"{a.upper()} is retired since {_when(since)}"
    return None


def verify_record(
    record: EvidenceRecord,
    data: bytes,
    roots: Sequence[Sequence[x509.Certificate]],
    *,
    at: datetime,
    retired: Mapping[str, datetime] | None = None,
) -> RecordResult:
    """Verify an evidence record over ``data`` (the checkpoint body); raise
    :class:`VerificationError` naming the first archive timestamp that fails.

    ``roots`` holds, per trusted TSA, its root certificates; every token must
    chain to one of them. ``retired`` maps hash algorithms (hashlib names) to
    the time from which they no longer count. RFC 4998 §5.3, in order:

    (1) every chain uses one hash algorithm (§5.1), and the record lists it;
    (2) the hashed value of each archive timestamp: for the first of the
        first chain, the hash of ``data``; for the first of a later chain
        (hash-tree renewal), the hash of ``data`` and of the chains before it
        (:func:`hash_tree_renewal_leaf`); otherwise the hash of the previous
        timestamp (:func:`renewal_leaf`);
    (3) up its reduced hash tree, that value leads to the token's message
        imprint, in the chain's algorithm;
    (4) the token verifies (:func:`verifier.timestamp.verify_token`: signature,
        chain to a trusted root at its genTime, ESS binding);
    (5) genTimes never decrease (TSAs state whole seconds: a renewal may share
        its predecessor's second);
    (6) each timestamp was made while the one before it was still
        trustworthy: that one's TSA certificate not expired and none of its
        hash algorithms retired at the new genTime; nor the new one's own;
    (7) the last one is still trustworthy at ``at``.
    """
    from verifier.timestamp import TimestampInfo, imprint_algorithm, verify_token

    retired = retired or {}
    stamps: list[Stamp] = []
    for c, chain in enumerate(record.chains):
        first_alg = chain[0].digest_algorithm
        for i, ats in enumerate(chain):
            where = f"evidence record: archive timestamp {c}.{i}"
            alg = ats.digest_algorithm or first_alg
            if alg is None:  # the token's imprint algorithm, as it says
                alg = imprint_algorithm(ats.time_stamp)
                first_alg = first_alg or alg
            if alg != first_alg:  # (1)
                raise VerificationError(f"{where}: uses {alg}, its chain uses {first_alg}")
            if alg not in record.digest_algorithms:
                raise VerificationError(f"{where}: {alg} is not in the record's digestAlgorithms")
            if i > 0:  # (2)
                leaf = renewal_leaf(alg, chain[i - 1])
            elif c > 0:
                prior = der.tlv(0x30, b"".join(record.chain_raws[:c]))
                leaf = hash_tree_renewal_leaf(alg, data, prior)
            else:
                leaf = _hash(alg, data)
            try:
                root = tree_root(alg, leaf, ats.reduced_hashtree)  # (3)
            except VerificationError as e:
                why = str(e).removeprefix("evidence record: ")
                raise VerificationError(f"{where}: {why}") from e
            info: TimestampInfo | None = None
            errors: list[str] = []
            for trusted in roots:  # (4)
                try:
                    info = verify_token(
                        ats.time_stamp, trusted, digest=root, algorithms={HASH_OIDS[alg]: alg}
                    )
                    break
                except (VerificationError, MalformedError) as e:
                    errors.append(str(e).removeprefix("timestamp: "))
            if info is None:
                why = errors[0] if len(set(errors)) == 1 else "; ".join(errors)
                raise VerificationError(f"{where}: token does not verify ({why})")
            assert info.tsa_not_after is not None
            stamp = Stamp(info.gen_time, info.tsa, info.tsa_not_after, (alg, info.hash_algorithm))
            if stamps:
                prev = stamps[-1]
                if stamp.gen_time < prev.gen_time:  # (5)
                    raise VerificationError(
                        f"{where}: genTime {_when(stamp.gen_time)} is before the previous "
                        f"timestamp's {_when(prev.gen_time)}"
                    )
                if prev.not_after < stamp.gen_time:  # (6)
                    raise VerificationError(
                        f"{where}: gap in the renewal chain: made at {_when(stamp.gen_time)}, "
                        f"after the certificate of {prev.tsa} that made the previous timestamp "
                        f"expired ({_when(prev.not_after)})"
                    )
                why_old = _retired_by(prev.algorithms, stamp.gen_time, retired)
                if why_old is not None:
                    raise VerificationError(
                        f"{where}: gap in the renewal chain: made at {_when(stamp.gen_time)}, "
                        f"when the previous timestamp no longer counted ({why_old})"
                    )
            why_new = _retired_by(stamp.algorithms, stamp.gen_time, retired)
            if why_new is not None:
                raise VerificationError(
                    f"{where}: made at {_when(stamp.gen_time)} with a retired algorithm ({why_new})"
                )
            stamps.append(stamp)
    last = stamps[-1]  # (7)
    if last.not_after < at:
        raise VerificationError(
            f"evidence record: the last timestamp ({_when(last.gen_time)}, by {last.tsa}) "
            f"is no longer trustworthy: its TSA certificate expired at {_when(last.not_after)}, "
            f"before the verification time {_when(at)}, and it was not renewed"
        )
    why_last = _retired_by(last.algorithms, at, retired)
    if why_last is not None:
        raise VerificationError(
            f"evidence record: the last timestamp ({_when(last.gen_time)}) is no longer "
            f"trustworthy at {_when(at)} ({why_last}) and it was not renewed"
        )
    return RecordResult(tuple(stamps))
