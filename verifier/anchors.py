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

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from verifier.cosignature import verify_cosignatures
from verifier.errors import MalformedError, VerificationError
from verifier.note import Note
from verifier.report import FAILED, NOT_APPLICABLE, PASSED, SKIPPED, Check
from verifier.trust import Trust

if TYPE_CHECKING:
    from verifier.timestamp import TimestampInfo

__all__ = ["timestamp_check", "witness_check"]


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
    """The RFC 3161 token(s) over the checkpoint body against the trust file's TSA policy.

    One TSA (``tsa_roots``): its token must verify. Several (``tsas``): at
    least ``quorum`` of them must have a valid token in the checkpoint's token
    set. The facts returned are those of the token whose genTime bounds the
    checkpoint's existence (see :class:`verifier.timestamp.StampedCheckpoint`).
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
            info,
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
        info,
    )
