"""Regenerate the test vectors and adversarial fixtures in tests/vectors.

Usage (from the repository root)::

    python tests/vectors/make_vectors.py            # rewrite tests/vectors
    python tests/vectors/make_vectors.py --out DIR  # write elsewhere (the test does)

Everything is deterministic: Ed25519 keys come from fixed seeds (Ed25519
signatures are deterministic, RFC 8032), leaves are fixed bytes, JSON is
written sorted with two-space indents. Running it twice gives the same bytes,
which tests/verifier/test_verifier_vectors.py checks against the committed files.

Each adversarial fixture is named for what it breaks and listed in
manifest.json with the error class and a message substring the verifier must
raise; JSON fixtures carry the same record in their ``expect`` member. Before
writing, the script checks every fixture against the verifier, so a change in
the verifier that lets one pass cannot be baked into regenerated vectors.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from verifier.canonical import canonicalize, loads_canonical  # noqa: E402
from verifier.checkpoint import Checkpoint, open_checkpoint  # noqa: E402
from verifier.errors import Error, MalformedError, VerificationError  # noqa: E402
from verifier.merkle import (  # noqa: E402
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from verifier.note import Note, NoteSignature, VerifierKey, parse_note, verify_note  # noqa: E402

HERE = Path(__file__).resolve().parent
ORIGIN = "vectors.evidence-ledger.test/log"
TREE_SIZE = 16
SEEDS = {
    "log": ORIGIN,
    "witness": "witness.vectors.test",
    "attacker": "attacker.vectors.test",
}


def seed_key(label: str) -> Ed25519PrivateKey:
    """A fixed Ed25519 key: the seed is SHA-256 of a public label. Test use only."""
    seed = hashlib.sha256(b"evidence-ledger test vectors: " + label.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


KEYS = {label: seed_key(label) for label in SEEDS}


def vkey(label: str) -> VerifierKey:
    public = KEYS[label].public_key().public_bytes_raw()
    return VerifierKey.from_public_key(SEEDS[label], public)


def sig(text: str, label: str, name: str | None = None) -> NoteSignature:
    """Signature line by key ``label``; ``name`` overrides the name (not the key ID)."""
    key = vkey(label)
    return NoteSignature(name or key.name, key.key_id, KEYS[label].sign(text.encode()))


def note(text: str, *sigs: NoteSignature) -> str:
    return Note(text, sigs).to_text()


# ---------------------------------------------------------------- the tree

LEAVES = [canonicalize({"index": i, "leaf": f"vector {i}"}) for i in range(TREE_SIZE)]
HASHES = [leaf_hash(x) for x in LEAVES]
ROOTS = [root_from_leaf_hashes(HASHES[:n]) for n in range(TREE_SIZE + 1)]


def hx(b: bytes) -> str:
    return b.hex()


def inclusion_case(index: int, size: int) -> dict[str, Any]:
    return {
        "leaf_hash": hx(HASHES[index]),
        "index": index,
        "size": size,
        "proof": [hx(p) for p in inclusion_proof(index, HASHES[:size])],
        "root": hx(ROOTS[size]),
    }


def consistency_case(old: int, new: int) -> dict[str, Any]:
    return {
        "old_size": old,
        "new_size": new,
        "proof": [hx(p) for p in consistency_proof(old, HASHES[:new])],
        "old_root": hx(ROOTS[old]),
        "new_root": hx(ROOTS[new]),
    }


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def noncanonical_b64(b64: str) -> str:
    """Set an unused low bit before the padding: same bytes, non-canonical text."""
    assert b64.endswith("=")
    pos = len(b64.rstrip("=")) - 1
    other = b64[:pos] + _B64[_B64.index(b64[pos]) ^ 1] + b64[pos + 1 :]
    assert base64.b64decode(other) == base64.b64decode(b64)
    return other


def flip(hexstr: str, byte: int = 0, bit: int = 0) -> str:
    raw = bytearray(bytes.fromhex(hexstr))
    raw[byte] ^= 1 << bit
    return raw.hex()


# ---------------------------------------------------------------- runners


def run_inclusion(case: dict[str, Any]) -> None:
    verify_inclusion(
        bytes.fromhex(case["leaf_hash"]),
        case["index"],
        case["size"],
        [bytes.fromhex(p) for p in case["proof"]],
        bytes.fromhex(case["root"]),
    )


def run_consistency(case: dict[str, Any]) -> None:
    verify_consistency(
        case["old_size"],
        case["new_size"],
        [bytes.fromhex(p) for p in case["proof"]],
        bytes.fromhex(case["old_root"]),
        bytes.fromhex(case["new_root"]),
    )


def run_note(data: bytes, keys: list[str]) -> None:
    verify_note(parse_note(data), [vkey(k) for k in keys])


def run_checkpoint(data: bytes, keys: list[str], origin: str | None) -> None:
    open_checkpoint(data, [vkey(k) for k in keys], origin=origin)


def run(entry: dict[str, Any], data: bytes) -> None:
    """Run one fixture the way tests/verifier/test_verifier_vectors.py does."""
    kind = entry["kind"]
    if kind == "inclusion":
        run_inclusion(json.loads(data))
    elif kind == "consistency":
        run_consistency(json.loads(data))
    elif kind == "note":
        run_note(data, entry["keys"])
    elif kind == "checkpoint":
        run_checkpoint(data, entry["keys"], entry.get("origin"))
    elif kind == "jcs":
        loads_canonical(data)
    elif kind == "vkey":
        VerifierKey.from_text(data.decode("utf-8"))
    else:
        raise ValueError(f"unknown kind {kind}")


# ---------------------------------------------------------------- fixtures


class Vectors:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.manifest: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        kind: str,
        data: bytes,
        breaks: str,
        error: type[Error] | None = None,
        message: str = "",
        **extra: Any,
    ) -> None:
        entry: dict[str, Any] = {"file": name, "kind": kind, "breaks": breaks, **extra}
        entry["expect"] = (
            {"valid": True} if error is None else {"error": error.__name__, "message": message}
        )
        if name.endswith(".json") and kind in ("inclusion", "consistency"):
            doc = json.loads(data)
            doc["description"] = breaks
            doc["expect"] = entry["expect"]
            data = dump(doc)
        self._check(entry, data, error, message)
        self.files[name] = data
        self.manifest.append(entry)

    @staticmethod
    def _check(entry: dict[str, Any], data: bytes, error: type[Error] | None, message: str) -> None:
        try:
            run(entry, data)
        except Error as e:
            if error is None or type(e) is not error or message not in str(e):
                raise SystemExit(f"{entry['file']}: unexpected {type(e).__name__}: {e}") from e
            return
        if error is not None:
            raise SystemExit(f"{entry['file']}: verified, expected {error.__name__}")

    def json_case(
        self,
        name: str,
        kind: str,
        case: dict[str, Any],
        breaks: str,
        error: type[Error],
        message: str,
    ) -> None:
        self.add(name, kind, dump(case), breaks, error, message)


def dump(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def merkle(v: Vectors) -> None:
    v.files["merkle-tree.json"] = dump(
        {
            "description": "RFC 9162 tree of the vectors: leaf bytes, leaf hashes, root of "
            "every size (roots[n] is the root of the first n leaves).",
            "leaves": [x.decode() for x in LEAVES],
            "leaf_hashes": [hx(h) for h in HASHES],
            "roots": [hx(r) for r in ROOTS],
        }
    )
    v.files["inclusion-valid.json"] = dump(
        {
            "description": "Every (index, size) of the tree, size 1..16: each must verify.",
            "cases": [inclusion_case(i, n) for n in range(1, TREE_SIZE + 1) for i in range(n)],
        }
    )
    v.files["consistency-valid.json"] = dump(
        {
            "description": "Every 0 <= old_size <= new_size <= 16: each must verify.",
            "cases": [consistency_case(m, n) for n in range(TREE_SIZE + 1) for m in range(n + 1)],
        }
    )

    base = inclusion_case(5, 13)  # 4 proof hashes, both left and right siblings
    c = dict(base, proof=[base["proof"][0], flip(base["proof"][1], 7, 3), *base["proof"][2:]])
    v.json_case(
        "inclusion-flipped-proof-byte.json",
        "inclusion",
        c,
        "one bit of one proof hash flipped",
        VerificationError,
        "computed root does not match",
    )
    v.json_case(
        "inclusion-index-equals-size.json",
        "inclusion",
        dict(base, index=13),
        "index equal to the tree size (out of range)",
        VerificationError,
        "index 13 is not below tree size 13",
    )
    v.json_case(
        "inclusion-negative-index.json",
        "inclusion",
        dict(base, index=-1),
        "negative index",
        VerificationError,
        "index -1 is not below tree size 13",
    )
    v.json_case(
        "inclusion-empty-tree.json",
        "inclusion",
        dict(base, index=0, size=0, proof=[]),
        "inclusion in the empty tree",
        VerificationError,
        "index 0 is not below tree size 0",
    )
    v.json_case(
        "inclusion-wrong-index.json",
        "inclusion",
        dict(base, index=4),
        "proof for index 5 presented as index 4",
        VerificationError,
        "computed root does not match",
    )
    v.json_case(
        "inclusion-wrong-size.json",
        "inclusion",
        dict(base, size=7),
        "proof for size 13 presented with size 7",
        VerificationError,
        "proof has 4 hashes, expected 3",
    )
    v.json_case(
        "inclusion-truncated-proof.json",
        "inclusion",
        dict(base, proof=base["proof"][:-1]),
        "last proof hash removed",
        VerificationError,
        "proof has 3 hashes, expected 4",
    )
    v.json_case(
        "inclusion-extended-proof.json",
        "inclusion",
        dict(base, proof=[*base["proof"], hx(ROOTS[13])]),
        "the root appended to the proof",
        VerificationError,
        "proof has 5 hashes, expected 4",
    )
    v.json_case(
        "inclusion-wrong-root.json",
        "inclusion",
        dict(base, root=hx(ROOTS[12])),
        "valid proof checked against another tree's root",
        VerificationError,
        "computed root does not match",
    )
    v.json_case(
        "inclusion-short-proof-hash.json",
        "inclusion",
        dict(base, proof=[base["proof"][0][:62], *base["proof"][1:]]),
        "a proof hash of 31 bytes",
        MalformedError,
        "hash has 31 bytes, expected 32",
    )
    # Second preimage: the node over leaves 4 and 5 presented as a leaf of the
    # 4-"leaf" tree [n01, n23, n45, n67] whose root is the 8-leaf root. Its leaf
    # bytes would be left || right; RFC 9162 hashes them with the 0x00 prefix,
    # which is not the node's 0x01 prefix, so the proof fails.
    interior: dict[str, Any] = {
        "leaf_hash": hx(leaf_hash(HASHES[4] + HASHES[5])),
        "index": 2,
        "size": 4,
        "proof": [hx(node_hash(HASHES[6], HASHES[7])), hx(root_from_leaf_hashes(HASHES[:4]))],
        "root": hx(ROOTS[8]),
    }
    # (With the node itself as the leaf hash the same proof would verify.)
    verify_inclusion(
        node_hash(HASHES[4], HASHES[5]),
        2,
        4,
        [bytes.fromhex(p) for p in interior["proof"]],
        ROOTS[8],
    )
    v.json_case(
        "inclusion-interior-node-as-leaf.json",
        "inclusion",
        interior,
        "the node over leaves 4 and 5 offered as leaf 2 of a 4-leaf view of the 8-leaf tree "
        "(second-preimage attempt; only the leaf/node prefixes stop it)",
        VerificationError,
        "computed root does not match",
    )

    base = consistency_case(6, 13)
    v.json_case(
        "consistency-flipped-proof-byte.json",
        "consistency",
        dict(base, proof=[flip(base["proof"][0], 31, 7), *base["proof"][1:]]),
        "one bit of one proof hash flipped",
        VerificationError,
        "does not reproduce the old root",
    )
    v.json_case(
        "consistency-rollback.json",
        "consistency",
        dict(base, old_size=13, new_size=6, old_root=base["new_root"], new_root=base["old_root"]),
        "the new tree is smaller than the old one",
        VerificationError,
        "new size 6 is smaller than old size 13 (rollback)",
    )
    v.json_case(
        "consistency-wrong-old-root.json",
        "consistency",
        dict(base, old_root=hx(ROOTS[5])),
        "the old root is another tree's",
        VerificationError,
        "does not reproduce the old root",
    )
    v.json_case(
        "consistency-wrong-new-root.json",
        "consistency",
        dict(base, new_root=hx(ROOTS[14])),
        "the new root is another tree's (a fork)",
        VerificationError,
        "does not reproduce the new root",
    )
    v.json_case(
        "consistency-truncated-proof.json",
        "consistency",
        dict(base, proof=base["proof"][:-1]),
        "last proof hash removed",
        VerificationError,
        f"proof has {len(base['proof']) - 1} hashes, expected {len(base['proof'])}",
    )
    v.json_case(
        "consistency-extended-proof.json",
        "consistency",
        dict(base, proof=[*base["proof"], base["new_root"]]),
        "the new root appended to the proof",
        VerificationError,
        f"proof has {len(base['proof']) + 1} hashes, expected {len(base['proof'])}",
    )
    v.json_case(
        "consistency-equal-sizes-different-roots.json",
        "consistency",
        dict(consistency_case(9, 9), new_root=hx(ROOTS[10])),
        "two different roots for the same size (a fork)",
        VerificationError,
        "two different roots for size 9",
    )
    v.json_case(
        "consistency-equal-sizes-nonempty-proof.json",
        "consistency",
        dict(consistency_case(9, 9), proof=[hx(ROOTS[9])]),
        "a proof between equal sizes must be empty",
        VerificationError,
        "proof must be empty for equal sizes",
    )
    v.json_case(
        "consistency-from-empty-with-proof.json",
        "consistency",
        dict(consistency_case(0, 7), proof=[hx(ROOTS[7])]),
        "a proof from the empty tree must be empty",
        VerificationError,
        "proof must be empty from the empty tree",
    )
    v.json_case(
        "consistency-empty-tree-wrong-root.json",
        "consistency",
        dict(consistency_case(0, 7), old_root=hx(ROOTS[1])),
        "a size-0 tree whose root is not SHA-256 of nothing",
        VerificationError,
        "old root of size 0 is not the empty tree's hash",
    )
    assert bytes.fromhex(consistency_case(0, 7)["old_root"]) == EMPTY_ROOT


def notes(v: Vectors) -> None:
    text = "evidence ledger test note\nsecond line\n"
    signed = note(text, sig(text, "log"), sig(text, "witness"))
    v.add(
        "note-valid.txt",
        "note",
        signed.encode(),
        "nothing: signed by the log and a witness",
        keys=["log"],
    )
    v.add(
        "note-valid-witness-only-trusted.txt",
        "note",
        signed.encode(),
        "nothing: the log's signature is ignored when only the witness is trusted",
        keys=["witness"],
    )
    forged = NoteSignature(ORIGIN, vkey("log").key_id, KEYS["attacker"].sign(text.encode()))
    v.add(
        "note-forged-signature.txt",
        "note",
        note(text, forged).encode(),
        "the log's name and key ID over a signature by another key",
        VerificationError,
        f"invalid signature by {ORIGIN}",
        keys=["log"],
    )
    v.add(
        "note-tampered-text.txt",
        "note",
        signed.replace("second line", "second lime").encode(),
        "one character of the signed text changed",
        VerificationError,
        "invalid signature",
        keys=["log"],
    )
    v.add(
        "note-unknown-signer-only.txt",
        "note",
        note(text, sig(text, "attacker")).encode(),
        "signed only by a key the verifier does not trust",
        VerificationError,
        "no signature by a trusted key",
        keys=["log"],
    )
    good = sig(text, "log")
    v.add(
        "note-duplicate-signature.txt",
        "note",
        note(text, good, good).encode(),
        "the same trusted key's signature twice",
        VerificationError,
        f"two signatures by {ORIGIN}",
        keys=["log"],
    )
    short = NoteSignature(good.name, good.key_id, good.signature[:63])
    v.add(
        "note-short-signature.txt",
        "note",
        note(text, short).encode(),
        "a trusted key's signature of 63 bytes",
        VerificationError,
        "wrong length",
        keys=["log"],
    )
    line = good.to_line()
    b64 = line.split(" ")[2].rstrip("\n")
    noncanonical = noncanonical_b64(b64)
    v.add(
        "note-noncanonical-base64.txt",
        "note",
        (text + "\n" + line.replace(b64, noncanonical)).encode(),
        "signature base64 with non-zero padding bits (decodes to the same bytes)",
        MalformedError,
        "non-canonical base64",
        keys=["log"],
    )
    v.add(
        "note-invalid-base64.txt",
        "note",
        (text + "\n" + line.replace(b64, b64.rstrip("="))).encode(),
        "signature base64 without its padding",
        MalformedError,
        "invalid base64",
        keys=["log"],
    )
    v.add(
        "note-missing-blank-line.txt",
        "note",
        (text + line).encode(),
        "no blank line between text and signatures",
        MalformedError,
        "no blank line",
        keys=["log"],
    )
    v.add(
        "note-no-trailing-newline.txt",
        "note",
        signed.rstrip("\n").encode(),
        "the last signature line has no newline",
        MalformedError,
        "does not end in a newline",
        keys=["log"],
    )
    ctl = "evidence ledger test note\x1b[31m\n"
    v.add(
        "note-control-character.txt",
        "note",
        note(ctl, sig(ctl, "log")).encode(),
        "an ESC control character in the (validly signed) text",
        MalformedError,
        "control character",
        keys=["log"],
    )
    v.add(
        "note-carriage-return.txt",
        "note",
        signed.replace("\n", "\r\n").encode(),
        "CRLF line endings",
        MalformedError,
        "control character",
        keys=["log"],
    )
    v.add(
        "note-name-with-plus.txt",
        "note",
        note(text, sig(text, "log", name="a+b.test")).encode(),
        "a signature name containing '+'",
        MalformedError,
        "key name",
        keys=["log"],
    )
    v.add(
        "note-extra-field.txt",
        "note",
        (signed[:-1] + " extra\n").encode(),
        "a signature line with a third field (a name with a space)",
        MalformedError,
        "'— name signature'",
        keys=["log"],
    )
    v.add(
        "note-ascii-dash.txt",
        "note",
        signed.replace("\u2014", "-").encode(),
        "'-' instead of the em dash U+2014",
        MalformedError,
        "em dash",
        keys=["log"],
    )
    v.add(
        "note-invalid-utf8.txt",
        "note",
        signed.encode().replace(b"second", b"sec\xffnd"),
        "invalid UTF-8 in the text",
        MalformedError,
        "not valid UTF-8",
        keys=["log"],
    )


def checkpoints(v: Vectors) -> None:
    body = Checkpoint(ORIGIN, TREE_SIZE, ROOTS[TREE_SIZE]).to_text()
    valid = note(body, sig(body, "log"), sig(body, "witness"))
    v.add(
        "checkpoint-valid.txt",
        "checkpoint",
        valid.encode(),
        "nothing: the tree of merkle-tree.json, signed by the log and a witness",
        keys=["log", "witness"],
        origin=ORIGIN,
    )
    other = "other.vectors.test/log"
    other_body = Checkpoint(other, TREE_SIZE, ROOTS[TREE_SIZE]).to_text()
    v.add(
        "checkpoint-other-origin.txt",
        "checkpoint",
        note(other_body, sig(other_body, "log", name=other)).encode(),
        "a checkpoint of another log (origin) where this log's is expected",
        VerificationError,
        f"origin {other!r}, expected {ORIGIN!r}",
        keys=["log"],
        origin=ORIGIN,
    )
    v.add(
        "checkpoint-signed-by-witness-only.txt",
        "checkpoint",
        note(body, sig(body, "witness")).encode(),
        "cosigned by a trusted witness but not signed by the log",
        VerificationError,
        "no signature by a trusted key",
        keys=["log", "witness"],
        origin=ORIGIN,
    )
    v.add(
        "checkpoint-no-log-key.txt",
        "checkpoint",
        valid.encode(),
        "the verifier holds no key named after the origin",
        VerificationError,
        "no trusted log key for origin",
        keys=["witness"],
    )

    def signed_body(text: str) -> bytes:
        return note(text, sig(text, "log")).encode()

    root_b64 = base64.b64encode(ROOTS[TREE_SIZE]).decode()
    bad_bodies: list[tuple[str, str, str, str]] = [
        (
            "checkpoint-size-leading-zero.txt",
            f"{ORIGIN}\n016\n{root_b64}\n",
            "size written with a leading zero",
            "is not a canonical decimal",
        ),
        (
            "checkpoint-negative-size.txt",
            f"{ORIGIN}\n-16\n{root_b64}\n",
            "negative size",
            "is not a canonical decimal",
        ),
        (
            "checkpoint-size-too-large.txt",
            f"{ORIGIN}\n{2**63}\n{root_b64}\n",
            "size of 2**63",
            "does not fit in 63 bits",
        ),
        (
            "checkpoint-root-31-bytes.txt",
            f"{ORIGIN}\n{TREE_SIZE}\n{base64.b64encode(ROOTS[TREE_SIZE][:31]).decode()}\n",
            "a 31-byte root",
            "root has 31 bytes, expected 32",
        ),
        (
            "checkpoint-root-noncanonical-base64.txt",
            f"{ORIGIN}\n{TREE_SIZE}\n{noncanonical_b64(root_b64)}\n",
            "root base64 with non-zero padding bits",
            "non-canonical base64",
        ),
        (
            "checkpoint-missing-root-line.txt",
            f"{ORIGIN}\n{TREE_SIZE}\n",
            "the root line is missing",
            "needs origin, size and root",
        ),
        (
            "checkpoint-empty-extension-line.txt",
            f"{ORIGIN}\n{TREE_SIZE}\n{root_b64}\n\nx\n",
            "an empty extension line",
            "empty extension line",
        ),
    ]
    for name, text, breaks, message in bad_bodies:
        v.add(
            name,
            "checkpoint",
            signed_body(text),
            breaks + " (validly signed)",
            MalformedError,
            message,
            keys=["log"],
            origin=ORIGIN,
        )


def jcs(v: Vectors) -> None:
    example = canonicalize(
        {
            "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": '\u20ac$\u000f\nA\'B"\\\\"/',
            "literals": [None, True, False],
        }
    )
    v.add(
        "jcs-rfc8785-example.json",
        "jcs",
        example,
        "nothing: the canonical output of RFC 8785 §3.2.3",
    )
    cases: list[tuple[str, bytes, str, str]] = [
        (
            "jcs-duplicate-member.json",
            b'{"a":1,"a":2}',
            "a member name twice",
            "duplicate member 'a'",
        ),
        (
            "jcs-noncanonical-whitespace.json",
            b'{"a": 1}',
            "a space after the colon",
            "not in RFC 8785 canonical form",
        ),
        (
            "jcs-noncanonical-order.json",
            b'{"b":1,"a":2}',
            "members not sorted",
            "not in RFC 8785 canonical form",
        ),
        (
            "jcs-noncanonical-utf16-order.json",
            '{"\ue000":1,"\U0001f600":2}'.encode(),
            "members in code-point order instead of UTF-16 order",
            "not in RFC 8785 canonical form",
        ),
        (
            "jcs-noncanonical-number.json",
            b"[1.0]",
            "1.0 instead of 1",
            "not in RFC 8785 canonical form",
        ),
        (
            "jcs-noncanonical-negative-zero.json",
            b"[-0]",
            "-0 instead of 0",
            "not in RFC 8785 canonical form",
        ),
        (
            "jcs-unnecessary-escape.json",
            b'["\\u0041"]',
            "an escaped 'A'",
            "not in RFC 8785 canonical form",
        ),
        (
            "jcs-uppercase-escape.json",
            b'["\\u001F"]',
            "uppercase hex in an escape",
            "not in RFC 8785 canonical form",
        ),
        ("jcs-nan.json", b"[NaN]", "NaN", "NaN is not a JSON value"),
        (
            "jcs-number-overflow.json",
            b"[1e400]",
            "a number beyond the doubles",
            "outside the range of a double",
        ),
        ("jcs-invalid-utf8.json", b'["\xc0\xaf"]', "an overlong UTF-8 encoding", "not valid UTF-8"),
        ("jcs-lone-surrogate.json", b'["\\ud800"]', "an escaped lone surrogate", "lone surrogate"),
        (
            "jcs-trailing-newline.json",
            b"{}\n",
            "a newline after the value",
            "not in RFC 8785 canonical form",
        ),
    ]
    for name, data, breaks, message in cases:
        v.add(name, "jcs", data, breaks, MalformedError, message)


def keys(v: Vectors) -> None:
    v.files["keys.json"] = dump(
        {
            "description": "Verifier keys of the vectors (Ed25519, seeds are SHA-256 of "
            "'evidence-ledger test vectors: <label>'; never use them for anything real).",
            "keys": {label: vkey(label).to_text() for label in SEEDS},
        }
    )
    good = vkey("log").to_text()
    name, kid, b64 = good.split("+", 2)
    v.add("vkey-valid.txt", "vkey", (good + "\n").encode(), "nothing: the log's verifier key")
    v.add(
        "vkey-wrong-key-hash.txt",
        "vkey",
        f"{name}+{int(kid, 16) ^ 1:08x}+{b64}\n".encode(),
        "the key hash does not match the name and key",
        MalformedError,
        "key hash does not match",
    )
    v.add(
        "vkey-renamed.txt",
        "vkey",
        f"other.vectors.test+{kid}+{b64}\n".encode(),
        "the key under another name (the key hash binds the name)",
        MalformedError,
        "key hash does not match",
    )
    other_type = base64.b64encode(bytes([2]) + base64.b64decode(b64)[1:]).decode()
    v.add(
        "vkey-not-ed25519.txt",
        "vkey",
        f"{name}+{kid}+{other_type}\n".encode(),
        "key type 0x02 instead of Ed25519's 0x01",
        MalformedError,
        "not an Ed25519 key",
    )


GENERATORS: list[Callable[[Vectors], None]] = [merkle, notes, checkpoints, jcs, keys]


def build() -> dict[str, bytes]:
    v = Vectors()
    for generate in GENERATORS:
        generate(v)
    v.files["manifest.json"] = dump(
        {
            "description": "Every fixture: its kind (how to run it), what it breaks and what "
            "the verifier must say. See README.md.",
            "fixtures": sorted(v.manifest, key=lambda e: e["file"]),
        }
    )
    return v.files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    args = parser.parse_args(argv)
    files = build()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(files.items()):
        (args.out / name).write_bytes(data)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
