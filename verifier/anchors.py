"""Checks of a checkpoint's anchors: witness cosignatures and the RFC 3161 token.

Both follow the trust file and fail closed: a quorum above zero needs that
many cosignatures by trusted witnesses (C2SP tlog-cosignature/v1, checked by
:mod:`verifier.cosignature`); trusted TSA roots need a token over the
checkpoint body that verifies against them at its genTime (RFC 3161, checked
by :mod:`verifier.timestamp`), from as many TSAs as the policy's quorum. With
no witnesses required (quorum 0) or no TSA roots, the check is reported
explicitly as not applicable, never as passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from verifier.cosignature import verify_cosignatures
from verifier.errors import MalformedError, VerificationError
from verifier.note import Note
from verifier.report import FAILED, NOT_APPLICABLE, PASSED, SKIPPED, Check
from verifier.trust import Trust

if TYPE_CHECKING:
    from verifier.timestamp import StampedCheckpoint, TimestampInfo

__all__ = ["renewal_check", "stamped_check", "timestamp_check", "witness_check"]


def witness_check(note: Note, trust: Trust, log_trusted: bool) -> Check:
    """Witness cosignatures on ``note`` against the trust file's k-of-n policy."""
    policy = trust.witnesses
    if policy is None:
        return Check(
            "witnesses",
            NOT_APPLICABLE,
            "the trust file requires no witness cosignatures (quorum 0)",
            "信任文件不要求见证节点联署（法定数为 0）",
        )
    if not log_trusted:
        return Check(
            "witnesses",
            SKIPPED,
            "not checked: the checkpoint is not signed by a trusted log key",
            "无法检查：检查点未经可信日志密钥签名",
        )
    try:
        cosigned = verify_cosignatures(note, policy, now=datetime.now(UTC))
    except (VerificationError, MalformedError) as e:
        return Check("witnesses", FAILED, str(e), f"见证节点联署不满足要求（{e}）")
    names = ", ".join(c.name for c in cosigned)
    return Check(
        "witnesses",
        PASSED,
        f"{len(cosigned)} of {len(policy.keys)} trusted witnesses cosigned ({names}); "
        f"quorum {policy.quorum}",
        f"{len(policy.keys)} 个可信见证节点中有 {len(cosigned)} 个联署（{names}），"
        f"法定数 {policy.quorum}",
    )


def timestamp_check(
    checkpoint_text: str, token: bytes | None, trust: Trust
) -> tuple[Check, TimestampInfo | None]:
    """The RFC 3161 token(s) over the checkpoint body against the trust file's TSA
    policy (see :func:`stamped_check`); the facts of the bounding token."""
    check, stamped = stamped_check(checkpoint_text, token, trust)
    return check, stamped.bound if stamped is not None else None


def stamped_check(
    checkpoint_text: str, token: bytes | None, trust: Trust
) -> tuple[Check, StampedCheckpoint | None]:
    """The RFC 3161 token(s) over the checkpoint body against the trust file's TSA policy.

    One TSA (``tsa_roots``): its token must verify. Several (``tsas``): at
    least ``quorum`` of them must have a valid token in the checkpoint's token
    set. Returns the tokens that counted (:class:`verifier.timestamp.StampedCheckpoint`),
    whose ``bound`` is the token whose genTime bounds the checkpoint's existence.
    """
    policy = trust.tsa_policy
    if policy is None:
        extra_en = extra_zh = ""
        if token is not None:
            extra_en, extra_zh = "; the token present is not checked", "；所附时间戳未检查"
        return (
            Check(
                "timestamp",
                NOT_APPLICABLE,
                "the trust file lists no TSA roots" + extra_en,
                "信任文件未列出时间戳机构根证书" + extra_zh,
            ),
            None,
        )
    if token is None:
        return (
            Check(
                "timestamp",
                FAILED,
                "the trust file requires an RFC 3161 timestamp, there is none",
                "信任文件要求 RFC 3161 可信时间戳，但没有时间戳",
            ),
            None,
        )
    # Imported only when a token is to be checked: the ASN.1 library costs start-up time.
    from verifier.timestamp import verify_token_set

    try:
        stamped = verify_token_set(token, checkpoint_text.encode("utf-8"), policy)
    except (VerificationError, MalformedError) as e:
        return Check("timestamp", FAILED, str(e), f"可信时间戳无效（{e}）"), None
    info = stamped.bound
    when = info.gen_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(policy.authorities) == 1:
        return (
            Check(
                "timestamp",
                PASSED,
                f"checkpoint existed at {when} (genTime), token by {info.tsa}",
                f"检查点在 {when}（genTime）已存在，时间戳机构 {info.tsa}",
            ),
            stamped,
        )
    names = ", ".join(name for name, _ in stamped.stamps)
    k, n = len(stamped.stamps), len(policy.authorities)
    return (
        Check(
            "timestamp",
            PASSED,
            f"{k} of {n} trusted TSAs timestamped the checkpoint ({names}); quorum "
            f"{policy.quorum}; it existed at {when} (genTime)",
            f"{n} 个可信时间戳机构中有 {k} 个为检查点加盖时间戳（{names}），法定数 "
            f"{policy.quorum}；检查点在 {when}（genTime）已存在",
        ),
        stamped,
    )


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def renewal_check(
    checkpoint_text: str,
    token: bytes | None,
    records: Sequence[bytes],
    trust: Trust,
    at: datetime,
    stamped: StampedCheckpoint | None = None,
) -> Check:
    """Whether the checkpoint's timestamp still counts at ``at`` (RFC 4998).

    ``stamped``: what :func:`stamped_check` found, to avoid verifying the
    tokens twice.

    (1) not applicable without TSA roots in the trust file, skipped when the
    timestamp itself did not verify; (2) each evidence record parses and
    starts with one of the checkpoint's tokens, at most one per token;
    (3) for each token that counted towards the TSA quorum: with a record,
    the record verifies (:func:`verifier.ers.verify_record`: every renewal
    made while the timestamp before it was still trustworthy, the last one
    trustworthy at ``at``); without one, the token itself is trustworthy at
    ``at`` (TSA certificate unexpired, hash algorithms not retired); a record
    that does not verify fails the check even if the quorum is met without it;
    (4) at least the quorum of TSAs stays trustworthy.
    """
    policy = trust.tsa_policy
    if policy is None:  # (1)
        return Check(
            "timestamp_renewal",
            NOT_APPLICABLE,
            "the trust file lists no TSA roots",
            "信任文件未列出时间戳机构根证书",
        )
    from verifier.cms import split_token_set
    from verifier.ers import parse_record, verify_record
    from verifier.timestamp import verify_token_set

    body = checkpoint_text.encode("utf-8")
    try:
        if token is None:
            raise VerificationError("there is no timestamp")
        if stamped is None:
            stamped = verify_token_set(token, body, policy)
        tokens = split_token_set(token)
    except (VerificationError, MalformedError):
        return Check(
            "timestamp_renewal",
            SKIPPED,
            "not checked: the checkpoint's timestamp did not verify",
            "无法检查：检查点时间戳未通过验证",
        )
    by_token = {}
    for j, data in enumerate(records):  # (2)
        try:
            record = parse_record(data)
        except MalformedError as e:
            return _failed(f"evidence record {j}: {str(e).removeprefix('evidence record: ')}")
        if record.first_token not in tokens:
            return _failed(f"evidence record {j} does not start with a token of this checkpoint")
        index = tokens.index(record.first_token)
        if index in by_token:
            return _failed(f"two evidence records start with token {index} of this checkpoint")
        by_token[index] = record
    roots = [a.roots for a in policy.authorities]
    retired = trust.retired
    good: list[str] = []
    problems: list[str] = []
    several = len(policy.authorities) > 1
    for (name, info), index in zip(stamped.stamps, stamped.indexes, strict=True):  # (3)
        label = f"{name}: " if several else ""
        renewed = by_token.get(index)
        try:
            if renewed is None:
                _alone(info, at, retired)
                assert info.tsa_not_after is not None
                good.append(
                    f"{label}no renewal needed yet: the token's TSA certificate is valid "
                    f"until {_when(info.tsa_not_after)}"
                )
            else:
                last = verify_record(renewed, body, roots, at=at, retired=retired).last
                good.append(
                    f"{label}renewed {renewed.renewals} time(s) (RFC 4998 evidence record); the "
                    f"last timestamp, {_when(last.gen_time)} by {last.tsa}, is valid until "
                    f"{_when(last.not_after)}"
                )
        except (VerificationError, MalformedError) as e:
            problem = label + str(e).removeprefix("evidence record: ")
            if renewed is not None:  # a record that is there must hold, quorum or not
                return _failed(problem)
            problems.append(problem)
    if len(good) < policy.quorum:  # (4)
        detail = "; ".join(problems)
        if several:
            detail = (
                f"{len(good)} of {len(stamped.stamps)} TSAs' timestamps still count at "
                f"{_when(at)}, quorum is {policy.quorum} ({detail})"
            )
        return _failed(detail)
    return Check(
        "timestamp_renewal",
        PASSED,
        f"trustworthy at {_when(at)}: " + "; ".join(good),
        f"在 {_when(at)} 仍然可信：" + "；".join(good),
    )


def _failed(reason: str) -> Check:
    return Check("timestamp_renewal", FAILED, reason, f"时间戳续期链不成立（{reason}）")


def _alone(info: TimestampInfo, at: datetime, retired: dict[str, datetime]) -> None:
    """A token without renewals counts at ``at`` only while its TSA certificate
    is unexpired and its imprint algorithm is not retired."""
    assert info.tsa_not_after is not None
    if info.tsa_not_after < at:
        raise VerificationError(
            f"the token's TSA certificate ({info.tsa}) expired at {_when(info.tsa_not_after)}, "
            f"before the verification time {_when(at)}, and the token was not renewed before "
            "(no RFC 4998 evidence record for it)"
        )
    since = retired.get(info.hash_algorithm)
    if since is not None and since <= at:
        raise VerificationError(
            f"the token relies on {info.hash_algorithm.upper()}, retired since {_when(since)}, "
            "and was not renewed before (no RFC 4998 evidence record for it)"
        )
