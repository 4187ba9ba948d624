"""Deposit certificates (存证证书), format ``evidence-certificate/v1``.

A certificate is the RFC 8785 canonical JSON of one object, signed by the
issuing notary's Ed25519 key. It carries everything needed to check, offline,
that a file was deposited in the log: the evidence facts, the log entry (leaf
bytes) and its opening (salt + private body), an RFC 9162 inclusion proof, the
checkpoint (a C2SP signed note with any witness cosignatures), the checkpoint's
RFC 3161 token, and the notary's statement. ``docs/certificate-format.md``
documents every member; this module is the reference implementation.

Parsing (:meth:`Certificate.from_json`) is strict and separate from
verification (:func:`verify_certificate`), which is a numbered procedure
producing one :class:`~verifier.report.Check` per step.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from verifier.anchors import renewal_check, stamped_check, witness_check
from verifier.canonical import canonicalize, loads_canonical
from verifier.checkpoint import Checkpoint
from verifier.digest import FileDigest
from verifier.errors import MalformedError, VerificationError
from verifier.events import KINDS, TIME_PATTERN, deposit_number
from verifier.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from verifier.note import Note, VerifierKey, b64decode_strict, parse_note, verify_note
from verifier.record import Record, decode_record, verify_opening
from verifier.report import (
    FAILED,
    NOT_APPLICABLE,
    NOT_CHECKED,
    PASSED,
    SKIPPED,
    Check,
)
from verifier.tlogproof import TlogProof
from verifier.trust import NotaryKey, Trust, parse_utc

__all__ = [
    "CERTIFICATE_FORMAT",
    "MAX_CERTIFICATE_SIZE",
    "SIGNING_CONTEXT",
    "Certificate",
    "EvidenceFacts",
    "LogStatus",
    "build_certificate",
    "deposit_number",
    "log_view_checks",
    "verify_certificate",
]

CERTIFICATE_FORMAT = "evidence-certificate/v1"
SIGNING_CONTEXT = b"evidence-certificate/v1\n"
MAX_CERTIFICATE_SIZE = 4 << 20
CLOCK_TOLERANCE = timedelta(minutes=10)
"""How far the notary's clock may be behind the TSA's before an issue time
earlier than the checkpoint's timestamp counts as backdated."""
_MAX_PROOF = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_LOG_TIME = re.compile(TIME_PATTERN)

_TOP = {
    "certificate_id",
    "checkpoint",
    "entry",
    "evidence",
    "format",
    "inclusion_proof",
    "issued_at",
    "issuer",
    "signature",
    "statement",
    "timestamp_token",
}
_EVIDENCE = {
    "deposit_no",
    "deposited_at",
    "depositor",
    "evidence_id",
    "file_name",
    "kind",
    "media_type",
    "sha256",
    "size",
    "sm3",
    "title",
}
# Evidence facts that are copied from the private body, by private-body name.
_PRIVATE_FACTS = {
    "kind": "kind",
    "sha256": "sha256",
    "sm3": "sm3",
    "size": "size",
    "title": "title",
    "file_name": "file_name",
    "media_type": "media_type",
    "depositor": "owner",
}


@dataclass(frozen=True, slots=True)
class EvidenceFacts:
    """What the certificate says about the evidence (all bound to the log entry)."""

    evidence_id: str
    deposit_no: str
    kind: str
    sha256: str
    sm3: str | None
    size: int | None
    title: str | None
    file_name: str | None
    media_type: str | None
    depositor: str | None
    deposited_at: str

    def to_json(self) -> dict[str, Any]:
        """The ``evidence`` member."""
        return {name: getattr(self, name) for name in sorted(_EVIDENCE)}


@dataclass(frozen=True, slots=True)
class Certificate:
    """A parsed certificate. ``raw`` is its exact canonical bytes."""

    raw: bytes
    certificate_id: str
    issued_at: str
    issuer_name: str
    issuer_account_id: str
    issuer_vkey: VerifierKey
    statement: str
    evidence: EvidenceFacts
    index: int
    leaf: bytes
    salt: bytes
    private_body: bytes
    tree_size: int
    proof: tuple[bytes, ...]
    checkpoint: str
    checkpoint_note: Note
    checkpoint_body: Checkpoint
    timestamp_token: bytes | None
    signature: bytes
    signed_message: bytes
    content_id: str

    @classmethod
    def from_json(cls, data: bytes, *, allow_newline: bool = False) -> Certificate:
        """Parse a certificate strictly; raise :class:`MalformedError`.

        The bytes must be RFC 8785 canonical JSON (with ``allow_newline``, one
        trailing newline is tolerated, as saved from a terminal); every member
        must be present with its exact type; base64 and hex must be canonical.
        """
        if len(data) > MAX_CERTIFICATE_SIZE:
            raise MalformedError(f"certificate: larger than {MAX_CERTIFICATE_SIZE} bytes")
        body = data[:-1] if allow_newline and data.endswith(b"\n") else data
        try:
            obj = loads_canonical(body)
        except MalformedError as e:
            raise MalformedError(f"certificate: {e}") from e
        top = _members(obj, _TOP, "certificate")
        if top["format"] != CERTIFICATE_FORMAT:
            raise MalformedError(
                f"certificate: format is {top['format']!r}, expected {CERTIFICATE_FORMAT!r}"
            )
        cid = _hex64(top["certificate_id"], "certificate_id")
        issued_at = _time(top["issued_at"], "issued_at")
        issuer = _members(top["issuer"], {"account_id", "name", "vkey"}, "certificate: issuer")
        try:
            vkey = VerifierKey.from_text(_str(issuer["vkey"], "issuer.vkey"))
        except MalformedError as e:
            raise MalformedError(f"certificate: issuer.vkey: {e}") from e
        if vkey.to_text() != issuer["vkey"]:
            raise MalformedError("certificate: issuer.vkey is not in canonical form")
        ev = _members(top["evidence"], _EVIDENCE, "certificate: evidence")
        facts = EvidenceFacts(
            evidence_id=_str(ev["evidence_id"], "evidence.evidence_id"),
            deposit_no=_str(ev["deposit_no"], "evidence.deposit_no"),
            kind=_str(ev["kind"], "evidence.kind"),
            sha256=_hex64(ev["sha256"], "evidence.sha256"),
            sm3=None if ev["sm3"] is None else _hex64(ev["sm3"], "evidence.sm3"),
            size=_opt_int(ev["size"], "evidence.size"),
            title=_opt_str(ev["title"], "evidence.title"),
            file_name=_opt_str(ev["file_name"], "evidence.file_name"),
            media_type=_opt_str(ev["media_type"], "evidence.media_type"),
            depositor=_opt_str(ev["depositor"], "evidence.depositor"),
            deposited_at=_time(ev["deposited_at"], "evidence.deposited_at"),
        )
        if facts.kind not in KINDS:
            raise MalformedError(f"certificate: evidence.kind {facts.kind!r} is unknown")
        entry = _members(
            top["entry"], {"index", "leaf", "private_body", "salt"}, "certificate: entry"
        )
        index = _int(entry["index"], "entry.index")
        proof_obj = _members(
            top["inclusion_proof"], {"hashes", "tree_size"}, "certificate: inclusion_proof"
        )
        hashes = proof_obj["hashes"]
        if not isinstance(hashes, list) or len(hashes) > _MAX_PROOF:
            raise MalformedError(
                f"certificate: inclusion_proof.hashes must be a list of at most {_MAX_PROOF}"
            )
        proof = tuple(_b64(h, "inclusion_proof.hashes") for h in hashes)
        if any(len(h) != HASH_SIZE for h in proof):
            raise MalformedError(f"certificate: inclusion proof hashes must have {HASH_SIZE} bytes")
        checkpoint = _str(top["checkpoint"], "checkpoint")
        try:
            note = parse_note(checkpoint)
            cp = Checkpoint.from_text(note.text)
        except MalformedError as e:
            raise MalformedError(f"certificate: checkpoint: {e}") from e
        token = top["timestamp_token"]
        signature = _b64(top["signature"], "signature")
        if len(signature) != 64:
            raise MalformedError("certificate: signature must be 64 bytes (Ed25519)")
        statement = top["statement"]
        if not isinstance(statement, str):
            raise MalformedError("certificate: statement must be a string")
        unsigned = {k: v for k, v in top.items() if k != "signature"}
        content = {k: v for k, v in unsigned.items() if k != "certificate_id"}
        return cls(
            raw=body,
            certificate_id=cid,
            issued_at=issued_at,
            issuer_name=_str(issuer["name"], "issuer.name"),
            issuer_account_id=_str(issuer["account_id"], "issuer.account_id"),
            issuer_vkey=vkey,
            statement=statement,
            evidence=facts,
            index=index,
            leaf=_b64(entry["leaf"], "entry.leaf"),
            salt=_b64(entry["salt"], "entry.salt"),
            private_body=_b64(entry["private_body"], "entry.private_body"),
            tree_size=_int(proof_obj["tree_size"], "inclusion_proof.tree_size"),
            proof=proof,
            checkpoint=checkpoint,
            checkpoint_note=note,
            checkpoint_body=cp,
            timestamp_token=None if token is None else _b64(token, "timestamp_token"),
            signature=signature,
            signed_message=SIGNING_CONTEXT + canonicalize(unsigned),
            content_id=hashlib.sha256(canonicalize(content)).hexdigest(),
        )

    def tlog_proof(self) -> TlogProof:
        """The certificate's inclusion proof as a C2SP tlog-proof (leaf bytes as extra)."""
        return TlogProof(
            index=self.index, hashes=self.proof, checkpoint=self.checkpoint, extra=self.leaf
        )

    def facts(self) -> dict[str, Any]:
        """Facts to show at the top of a report."""
        return {
            "certificate_id": self.certificate_id,
            "deposit_no": self.evidence.deposit_no,
            "evidence_id": self.evidence.evidence_id,
            "title": self.evidence.title,
            "sha256": self.evidence.sha256,
            "issuer": self.issuer_name,
            "issued_at": self.issued_at,
            "origin": self.checkpoint_body.origin,
            "size": self.checkpoint_body.size,
        }


def build_certificate(
    *,
    issued_at: str,
    issuer_name: str,
    issuer_account_id: str,
    issuer_vkey: VerifierKey,
    statement: str,
    evidence: EvidenceFacts,
    index: int,
    leaf: bytes,
    salt: bytes,
    private_body: bytes,
    tree_size: int,
    proof: Sequence[bytes],
    checkpoint: str,
    timestamp_token: bytes | None,
    sign: Callable[[bytes], bytes],
) -> bytes:
    """Assemble, identify and sign a certificate; return its canonical bytes.

    ``certificate_id`` is the hex SHA-256 of the canonical JSON of every other
    member except ``signature``; ``signature`` is ``sign`` (Ed25519 by the key
    in ``issuer_vkey``) over ``SIGNING_CONTEXT || canonical(all but signature)``.
    The result is parsed back, so what is built is always what parses.
    """
    content: dict[str, Any] = {
        "format": CERTIFICATE_FORMAT,
        "issued_at": issued_at,
        "issuer": {
            "account_id": issuer_account_id,
            "name": issuer_name,
            "vkey": issuer_vkey.to_text(),
        },
        "statement": statement,
        "evidence": evidence.to_json(),
        "entry": {
            "index": index,
            "leaf": _enc(leaf),
            "private_body": _enc(private_body),
            "salt": _enc(salt),
        },
        "inclusion_proof": {"hashes": [_enc(h) for h in proof], "tree_size": tree_size},
        "checkpoint": checkpoint,
        "timestamp_token": None if timestamp_token is None else _enc(timestamp_token),
    }
    cid = hashlib.sha256(canonicalize(content)).hexdigest()
    unsigned = {**content, "certificate_id": cid}
    signature = sign(SIGNING_CONTEXT + canonicalize(unsigned))
    raw = canonicalize({**unsigned, "signature": _enc(signature)})
    Certificate.from_json(raw)
    return raw


# -- verification -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogStatus:
    """What an audited log view says about one certificate.

    ``error`` is set when the view cannot be used for this certificate (the
    audit failed, another origin, an older or inconsistent tree); otherwise
    ``issued_index`` is the index of its ``certificate.issued`` event (None if
    absent), ``revoked`` the index and time of its ``certificate.revoked``, and
    ``key_registered`` / ``key_revoked`` the index (and time) of the
    ``key.registered`` / ``key.revoked`` events of the issuer's key.
    """

    origin: str
    size: int
    error: str | None = None
    issued_index: int | None = None
    revoked: tuple[int, str] | None = None
    key_registered: int | None = None
    key_revoked: tuple[int, str] | None = None


def _ok(key: str, en: str, zh: str, subject: str = "") -> Check:
    return Check(key, PASSED, en, zh, subject)


def _fail(key: str, en: str, zh: str, subject: str = "") -> Check:
    return Check(key, FAILED, en, zh, subject)


def _skip(key: str, why_en: str, why_zh: str) -> Check:
    return Check(key, SKIPPED, f"not checked: {why_en}", f"无法检查：{why_zh}")


def verify_certificate(
    cert: Certificate,
    trust: Trust,
    files: Sequence[FileDigest] = (),
    *,
    log: LogStatus | None = None,
    evidence_records: Sequence[bytes] = (),
    at: datetime | None = None,
) -> list[Check]:
    """Verify a certificate against the trust file; return one check per step.

    ``evidence_records`` are the RFC 4998 evidence records that renew the
    checkpoint's token(s) (they travel beside the certificate, which they
    postdate); ``at`` is the verification time (default: now).

    Nothing in the certificate is believed unless a trusted key vouches for it.
    Steps, in report order:

    (1) ``certificate_id`` is the SHA-256 of the certificate's content;
    (2) each evidence file's size, SHA-256 and SM3 equal the certificate's
        (not applicable to a hash-only deposit given no file);
    (3) the leaf is a canonical ``evidence.deposited`` record at the stated
        index, for this evidence id and kind;
    (4) salt + private body open the record's commitment;
    (5) the evidence facts equal the opened private body and the record
        (digests, size, title, depositor, deposit number, deposit time);
    (6) the inclusion proof leads from the leaf hash at the index to the root
        of the checkpoint, for the checkpoint's size, and the index is below it;
    (7) the checkpoint is signed by a trusted key of its origin (log);
    (8) witness cosignatures meet the trust file's quorum;
    (9) the RFC 3161 token is over the checkpoint and chains to a trusted root;
    (10) the timestamp is still trustworthy at ``at``: its TSA certificate
        unexpired and its algorithms not retired, or renewed in time by the
        evidence records (:func:`verifier.anchors.renewal_check`);
    (11) the notary key is trusted under the issuer's name and signed the
        certificate;
    (12) the issue time lies in that key's validity period, after the deposit
        and not before the checkpoint's timestamp (beyond a clock tolerance);
    (13) with a log view: the issuance is recorded in the log, after the
        issuer's key was registered there and before any revocation of it;
    (14) with a log view: the certificate has not been revoked.
    """
    checks: list[Check] = [_check_id(cert)]  # (1)
    checks += _check_files(cert, files)  # (2)
    record, leaf_check = _check_leaf(cert)  # (3)
    checks.append(leaf_check)
    if record is None:
        checks.append(_skip("commitment", "the leaf is not a valid record", "日志条目无效"))
        checks.append(_skip("evidence_facts", "the leaf is not a valid record", "日志条目无效"))
        private = None
    else:
        opening, private = _check_opening(cert, record)  # (4)
        checks.append(opening)
        if private is None:
            checks.append(_skip("evidence_facts", "the commitment does not open", "承诺值无法打开"))
        else:
            checks.append(_check_facts(cert, record, private))  # (5)
    checks.append(_check_inclusion(cert, trust))  # (6)
    log_check, log_trusted = _check_log_signature(cert, trust)  # (7)
    checks.append(log_check)
    checks.append(witness_check(cert.checkpoint_note, trust, log_trusted))  # (8)
    ts_check, stamped = stamped_check(cert.checkpoint_note.text, cert.timestamp_token, trust)
    checks.append(ts_check)  # (9)
    ts_info = stamped.bound if stamped is not None else None
    when = at if at is not None else datetime.now(UTC)
    checks.append(  # (10)
        renewal_check(
            cert.checkpoint_note.text,
            cert.timestamp_token,
            evidence_records,
            trust,
            when,
            stamped,
        )
    )
    sig_check, notary_keys = _check_notary(cert, trust)  # (11)
    checks.append(sig_check)
    gen_time = ts_info.gen_time if ts_info is not None else None
    checks.append(_check_validity(cert, notary_keys, gen_time))  # (12)
    checks += log_view_checks(cert, log)  # (13), (14)
    return checks


def _check_id(cert: Certificate) -> Check:
    if cert.content_id != cert.certificate_id:
        return _fail(
            "certificate_id",
            f"certificate_id {cert.certificate_id} is not the SHA-256 of the contents "
            f"({cert.content_id}): the certificate was edited",
            f"证书编号 {cert.certificate_id} 与内容的 SHA-256（{cert.content_id}）不符："
            "证书已被修改",
        )
    return _ok(
        "certificate_id",
        f"{cert.certificate_id} matches the contents",
        f"{cert.certificate_id} 与内容一致",
    )


def _check_files(cert: Certificate, files: Sequence[FileDigest]) -> list[Check]:
    ev = cert.evidence
    if not files:
        if ev.kind == "hash":
            return [
                Check(
                    "evidence_file",
                    NOT_APPLICABLE,
                    "hash-only deposit and no file given: the certificate attests the digest only",
                    "仅哈希存证且未提供文件：证书仅证明哈希值",
                )
            ]
        return [
            _fail(
                "evidence_file",
                f"no evidence file given; the certificate covers a {ev.kind} deposit "
                f"of SHA-256 {ev.sha256}",
                f"未提供证据文件；证书对应 SHA-256 为 {ev.sha256} 的存证",
            )
        ]
    out = []
    for f in files:
        problems_en: list[str] = []
        problems_zh: list[str] = []
        if f.sha256 != ev.sha256:
            problems_en.append(f"SHA-256 is {f.sha256}, the certificate says {ev.sha256}")
            problems_zh.append(f"SHA-256 为 {f.sha256}，证书记载为 {ev.sha256}")
        if ev.size is not None and f.size != ev.size:
            problems_en.append(f"size is {f.size} bytes, the certificate says {ev.size}")
            problems_zh.append(f"大小为 {f.size} 字节，证书记载为 {ev.size}")
        if ev.sm3 is not None and f.sm3 is not None and f.sm3 != ev.sm3:
            problems_en.append(f"SM3 is {f.sm3}, the certificate says {ev.sm3}")
            problems_zh.append(f"SM3 为 {f.sm3}，证书记载为 {ev.sm3}")
        if problems_en:
            out.append(
                _fail("evidence_file", "; ".join(problems_en), "；".join(problems_zh), f.name)
            )
            continue
        sm3_en = sm3_zh = ""
        if ev.sm3 is not None and f.sm3 is None:
            sm3_en, sm3_zh = (
                " (SM3 not available in this Python, not compared)",
                "（本环境不支持 SM3，未比对）",
            )
        elif ev.sm3 is not None:
            sm3_en, sm3_zh = ", SM3 matches", "，SM3 一致"
        out.append(
            _ok(
                "evidence_file",
                f"SHA-256 {f.sha256} matches ({f.size} bytes){sm3_en}",
                f"SHA-256 {f.sha256} 一致（{f.size} 字节）{sm3_zh}",
                f.name,
            )
        )
    return out


def _check_leaf(cert: Certificate) -> tuple[Record | None, Check]:
    try:
        record = decode_record(cert.leaf)
    except MalformedError as e:
        return None, _fail(
            "leaf", f"leaf is not a valid log record: {e}", f"叶子不是有效的日志记录：{e}"
        )
    ev = cert.evidence
    problems = []
    if record.index != cert.index:
        problems.append(f"record index {record.index}, certificate says {cert.index}")
    if record.type != "evidence.deposited":
        problems.append(f"record type {record.type!r}, expected 'evidence.deposited'")
    if record.body.get("evidence_id") != ev.evidence_id:
        problems.append(
            f"record is for evidence {record.body.get('evidence_id')!r}, not {ev.evidence_id!r}"
        )
    if record.body.get("kind") != ev.kind:
        problems.append(f"record kind {record.body.get('kind')!r}, certificate says {ev.kind!r}")
    if problems:
        text = "; ".join(problems)
        return None, _fail("leaf", text, f"叶子与证书不符：{text}")
    h = leaf_hash(cert.leaf).hex()
    return record, _ok(
        "leaf",
        f"entry {record.index} ({record.type}, {record.time}), leaf hash {h}",
        f"第 {record.index} 条（{record.type}，{record.time}），叶子哈希 {h}",
    )


def _check_opening(cert: Certificate, record: Record) -> tuple[Check, dict[str, Any] | None]:
    try:
        verify_opening(record, cert.salt, cert.private_body)
    except VerificationError:
        return (
            _fail(
                "commitment",
                f"SHA-256(salt || private body) is not the entry's commitment {record.commitment}",
                f"SHA-256（盐值 ‖ 私有内容）与条目承诺值 {record.commitment} 不符",
            ),
            None,
        )
    try:
        private = loads_canonical(cert.private_body)
    except MalformedError as e:
        return _fail(
            "commitment", f"private body is not canonical JSON: {e}", f"私有内容不是规范 JSON：{e}"
        ), None
    if not isinstance(private, dict):
        return _fail(
            "commitment", "private body is not a JSON object", "私有内容不是 JSON 对象"
        ), None
    return (
        _ok(
            "commitment",
            f"salt and private body open commitment {record.commitment}",
            f"盐值与私有内容打开承诺值 {record.commitment}",
        ),
        private,
    )


def _check_facts(cert: Certificate, record: Record, private: dict[str, Any]) -> Check:
    ev = cert.evidence
    wrong = [
        name
        for name, pname in _PRIVATE_FACTS.items()
        if private.get(pname) != getattr(ev, name)
        or type(private.get(pname)) is not type(getattr(ev, name))
    ]
    if ev.deposited_at != record.time:
        wrong.append("deposited_at")
    if ev.deposit_no != deposit_number(record.index, record.time):
        wrong.append("deposit_no")
    if wrong:
        names = ", ".join(wrong)
        return _fail(
            "evidence_facts",
            f"{names} differ from the deposited entry",
            f"{names} 与存证条目不符",
        )
    return _ok(
        "evidence_facts",
        f"deposit {ev.deposit_no} at {ev.deposited_at}: digests, size, title and depositor "
        "match the entry",
        f"存证编号 {ev.deposit_no}（{ev.deposited_at}）：哈希值、大小、标题、存证人与条目一致",
    )


def _check_inclusion(cert: Certificate, trust: Trust) -> Check:
    cp = cert.checkpoint_body
    if cert.tree_size != cp.size:
        return _fail(
            "inclusion",
            f"the proof is for a tree of size {cert.tree_size}, the checkpoint has size {cp.size}",
            f"证明针对大小为 {cert.tree_size} 的树，检查点大小为 {cp.size}",
        )
    if not trust.log_keys(cp.origin):
        return _fail(
            "inclusion",
            f"checkpoint origin {cp.origin!r} is not a log in the trust file",
            f"检查点来源 {cp.origin!r} 不在信任文件中",
        )
    try:
        verify_inclusion(leaf_hash(cert.leaf), cert.index, cp.size, cert.proof, cp.root)
    except (VerificationError, MalformedError) as e:
        return _fail("inclusion", str(e), f"包含证明不成立（{e}）")
    root = base64.b64encode(cp.root).decode("ascii")
    return _ok(
        "inclusion",
        f"entry {cert.index} is in {cp.origin} at size {cp.size}, root {root}",
        f"第 {cert.index} 条包含于 {cp.origin}（大小 {cp.size}，根 {root}）",
    )


def _check_log_signature(cert: Certificate, trust: Trust) -> tuple[Check, bool]:
    cp = cert.checkpoint_body
    keys = trust.log_keys(cp.origin)
    if not keys:
        return (
            _fail(
                "log_signature",
                f"no trusted log key for origin {cp.origin!r}",
                f"信任文件中没有来源 {cp.origin!r} 的日志密钥",
            ),
            False,
        )
    try:
        signed = verify_note(cert.checkpoint_note, keys)
    except VerificationError as e:
        present = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in cert.checkpoint_note.signatures)
        why = f"checkpoint: {e} (signature lines: {present or 'none'})"
        return _fail("log_signature", why, f"检查点签名无效（{why}）"), False
    names = ", ".join(f"{k.name}+{k.key_id.hex()}" for k in signed)
    return _ok("log_signature", f"signed by {names}", f"由 {names} 签名"), True


def _check_notary(cert: Certificate, trust: Trust) -> tuple[Check, list[NotaryKey]]:
    vkey = cert.issuer_vkey
    if not trust.notaries:
        return (
            _fail(
                "notary_signature",
                "the trust file lists no notaries (fail closed)",
                "信任文件未列出任何公证员（失败即拒绝）",
            ),
            [],
        )
    entries = trust.notary_keys(vkey)
    if not entries:
        return (
            _fail(
                "notary_signature",
                f"issuer key {vkey.name}+{vkey.key_id.hex()} is not a trusted notary key",
                f"签发密钥 {vkey.name}+{vkey.key_id.hex()} 不是可信公证员密钥",
            ),
            [],
        )
    named = [n for n in entries if n.name == cert.issuer_name]
    if not named:
        return (
            _fail(
                "notary_signature",
                f"the trust file lists this key for {entries[0].name!r}, "
                f"the certificate names {cert.issuer_name!r}",
                f"信任文件中该密钥属于 {entries[0].name!r}，证书记载为 {cert.issuer_name!r}",
            ),
            [],
        )
    try:
        vkey.verify(cert.signed_message, cert.signature)
    except VerificationError:
        return (
            _fail(
                "notary_signature",
                f"signature by {cert.issuer_name} does not verify: the certificate was altered",
                f"{cert.issuer_name} 的签名验证失败：证书已被修改",
            ),
            [],
        )
    return (
        _ok(
            "notary_signature",
            f"signed by {cert.issuer_name} ({vkey.name}+{vkey.key_id.hex()})",
            f"由 {cert.issuer_name}（{vkey.name}+{vkey.key_id.hex()}）签名",
        ),
        named,
    )


def _check_validity(cert: Certificate, keys: list[NotaryKey], gen_time: datetime | None) -> Check:
    if not keys:
        return _skip(
            "notary_key_validity", "the notary signature did not verify", "公证员签名未通过"
        )
    issued = parse_utc(cert.issued_at, "issued_at")
    deposited = parse_utc(cert.evidence.deposited_at, "deposited_at")
    if issued < deposited:
        return _fail(
            "notary_key_validity",
            f"issued at {cert.issued_at}, before the deposit at {cert.evidence.deposited_at}",
            f"签发时间 {cert.issued_at} 早于存证时间 {cert.evidence.deposited_at}",
        )
    if gen_time is not None and issued < gen_time - CLOCK_TOLERANCE:
        when = gen_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        return _fail(
            "notary_key_validity",
            f"issued at {cert.issued_at}, before its checkpoint was timestamped at {when}: "
            "backdated",
            f"签发时间 {cert.issued_at} 早于所引用检查点的时间戳 {when}：签发时间被提前",
        )
    for k in keys:
        if k.valid_at(issued):
            return _ok(
                "notary_key_validity",
                f"issued at {cert.issued_at}, within the key's validity {k.period()}",
                f"签发时间 {cert.issued_at} 在密钥有效期 {k.period()} 内",
            )
    periods = ", ".join(k.period() for k in keys)
    return _fail(
        "notary_key_validity",
        f"issued at {cert.issued_at}, outside the key's validity {periods}",
        f"签发时间 {cert.issued_at} 不在密钥有效期 {periods} 内",
    )


def log_view_checks(cert: Certificate, log: LogStatus | None) -> list[Check]:
    """Steps (13) and (14): issuance recorded (with a key valid in the log at
    that point), not revoked; not checked without a log.

    The order of entries in the log, not anyone's clock, decides whether the
    notary's key was registered and not yet revoked when the platform
    recorded the certificate."""
    if log is None:
        return [
            Check(
                "revocation",
                NOT_CHECKED,
                "no log given (use --log DIR_OR_URL to check revocation)",
                "未提供日志（使用 --log 检查撤销状态）",
            )
        ]
    if log.error is not None:
        reason = f"log view of {log.origin} (size {log.size}) cannot be used: {log.error}"
        zh = f"日志视图（{log.origin}，大小 {log.size}）不可用：{log.error}"
        return [_fail("issuance_logged", reason, zh), _fail("revocation", reason, zh)]
    if log.issued_index is None:
        issued = _fail(
            "issuance_logged",
            f"no certificate.issued event for {cert.certificate_id} in the log (size {log.size})",
            f"日志（大小 {log.size}）中没有该证书的出证记录",
        )
    elif log.key_registered is None or log.key_registered > log.issued_index:
        issued = _fail(
            "issuance_logged",
            f"certificate.issued at log index {log.issued_index}, but the issuer's key "
            "was not registered in the log before it",
            f"出证记录位于日志第 {log.issued_index} 条，但此前日志中没有签发密钥的登记",
        )
    elif log.key_revoked is not None and log.key_revoked[0] < log.issued_index:
        index, time = log.key_revoked
        issued = _fail(
            "issuance_logged",
            f"certificate.issued at log index {log.issued_index}, after the issuer's key was "
            f"revoked at index {index} ({time})",
            f"出证记录位于日志第 {log.issued_index} 条，"
            f"晚于签发密钥的撤销（第 {index} 条，{time}）",
        )
    else:
        issued = _ok(
            "issuance_logged",
            f"certificate.issued at log index {log.issued_index}; the issuer's key was "
            f"registered at index {log.key_registered}"
            + (f" and revoked later, at {log.key_revoked[0]}" if log.key_revoked else ""),
            f"出证记录位于日志第 {log.issued_index} 条；签发密钥登记于第 {log.key_registered} 条"
            + (f"，后于第 {log.key_revoked[0]} 条撤销" if log.key_revoked else ""),
        )
    if log.revoked is not None:
        index, time = log.revoked
        revoked = _fail(
            "revocation",
            f"REVOKED: certificate.revoked at log index {index} ({time})",
            f"已撤销：撤销记录位于日志第 {index} 条（{time}）",
        )
    else:
        revoked = _ok(
            "revocation",
            f"not revoked in the audited log of size {log.size}",
            f"在已审计的日志（大小 {log.size}）中未被撤销",
        )
    return [issued, revoked]


# -- strict member access -----------------------------------------------------


def _members(obj: object, names: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedError(f"{what}: must be a JSON object")
    if set(obj) != names:
        missing, extra = sorted(names - set(obj)), sorted(set(obj) - names)
        raise MalformedError(f"{what}: missing members {missing}, unknown members {extra}")
    return obj


def _str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedError(f"certificate: {what} must be a non-empty string")
    return value


def _opt_str(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MalformedError(f"certificate: {what} must be a string or null")
    return value


def _int(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise MalformedError(f"certificate: {what} must be a non-negative integer")
    return value


def _opt_int(value: object, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _hex64(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise MalformedError(f"certificate: {what} must be 64 lowercase hex digits")
    return value


def _time(value: object, what: str) -> str:
    if not isinstance(value, str) or not _LOG_TIME.fullmatch(value):
        raise MalformedError(f"certificate: {what} must be a UTC time YYYY-MM-DDTHH:MM:SS.ffffffZ")
    parse_utc(value, f"certificate: {what}")
    return value


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedError(f"certificate: {what} must be a base64 string")
    return b64decode_strict(value, f"certificate: {what}")


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
