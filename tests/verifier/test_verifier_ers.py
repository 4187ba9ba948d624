"""RFC 4998 evidence records: hash trees, encoding and strict parsing (verifier.ers).

Signed tokens and the renewal chain's time rules are tested with real TSAs in
``tests/anchoring/test_anchoring_renewal.py``; here, what needs no TSA.
"""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier import der
from verifier.errors import MalformedError, VerificationError
from verifier.ers import (
    encode_ats,
    encode_record,
    encode_sequence,
    hash_tree,
    hash_tree_renewal_leaf,
    parse_record,
    renewal_leaf,
    tree_root,
)

# A stand-in ContentInfo: parsing an evidence record does not open its tokens.
TOKEN = der.tlv(0x30, der.encode_oid("1.2.840.113549.1.7.2") + der.tlv(0xA0, der.tlv(0x30, b"")))


def _leaves(n: int, name: str = "sha256") -> list[bytes]:
    return [hashlib.new(name, i.to_bytes(4, "big")).digest() for i in range(n)]


@given(st.integers(min_value=1, max_value=300), st.sampled_from(["sha256", "sha512"]))
def test_every_leaf_of_every_tree_leads_to_the_root(n: int, name: str) -> None:
    leaves = _leaves(n, name)
    root, paths = hash_tree(name, leaves)
    assert len(paths) == n
    for leaf, path in zip(leaves, paths, strict=True):
        assert tree_root(name, leaf, path) == root
        assert len(path) <= max(1, n.bit_length() + 1)


@given(st.integers(min_value=2, max_value=64), st.data())
def test_a_flipped_byte_in_a_path_or_leaf_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    root, paths = hash_tree("sha256", leaves)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    path = [list(level) for level in paths[i]]
    level = data.draw(st.integers(min_value=0, max_value=len(path) - 1))
    value = data.draw(st.integers(min_value=0, max_value=len(path[level]) - 1))
    bad = bytearray(path[level][value])
    bad[data.draw(st.integers(min_value=0, max_value=31))] ^= 1
    path[level][value] = bytes(bad)
    with contextlib.suppress(VerificationError):  # the leaf itself changed in the first list
        assert tree_root("sha256", leaves[i], path) != root
    other = hashlib.sha256(b"another data object").digest()
    with pytest.raises(VerificationError, match="not in the first list"):
        tree_root("sha256", other, paths[i])


def test_one_leaf_is_its_own_root() -> None:
    (leaf,) = _leaves(1)
    assert hash_tree("sha256", [leaf]) == (leaf, [()])
    assert tree_root("sha256", leaf, ()) == leaf


def test_renewal_leaves() -> None:
    assert renewal_leaf("sha256", TOKEN) == hashlib.sha256(TOKEN).digest()
    h_d = hashlib.sha512(b"body").digest()
    ha = hashlib.sha512(b"sequence").digest()
    expected = hashlib.sha512(b"".join(sorted((h_d, ha)))).digest()
    assert hash_tree_renewal_leaf("sha512", b"body", b"sequence") == expected


def test_record_round_trip() -> None:
    _, paths = hash_tree("sha256", _leaves(5))
    first = encode_ats(TOKEN)
    second = encode_ats(TOKEN, algorithm="sha256", reduced=paths[2])
    third = encode_ats(TOKEN, algorithm="sha512", reduced=paths[4])
    data = encode_record([[first, second], [third]], ["sha256", "sha256", "sha512"])
    record = parse_record(data)
    assert record.digest_algorithms == ("sha256", "sha512")
    assert record.renewals == 2
    assert record.first_token == TOKEN
    assert record.chains[0][1].reduced_hashtree == paths[2]
    assert record.chains[1][0].digest_algorithm == "sha512"
    assert record.chains[0][0].digest_algorithm is None
    assert der.tlv(0x30, b"".join(record.chain_raws)) == encode_sequence([[first, second], [third]])
    # Strict DER: an ERS tool's view is the same bytes.
    assert der.decode(data, "record").der_form


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[:-1], "evidence record"),
        (lambda d: d.replace(b"\x02\x01\x01", b"\x02\x01\x02", 1), "version is not v1"),
        (lambda d: d + b"\x00", "after the end"),
    ],
)
def test_malformed_records_are_refused(mutate: object, message: str) -> None:
    data = encode_record([[encode_ats(TOKEN)]], ["sha256"])
    with pytest.raises(MalformedError, match=message):
        parse_record(mutate(data))  # type: ignore[operator]


def test_encryption_info_and_unknown_hashes_are_refused() -> None:
    algs = der.tlv(0x30, der.tlv(0x30, der.encode_oid("2.16.840.1.101.3.4.2.1")))
    seq = encode_sequence([[encode_ats(TOKEN)]])
    enc = der.tlv(0xA1, der.tlv(0x30, der.encode_oid("1.2.3") + der.tlv(0x05, b"")))
    data = der.tlv(0x30, der.tlv(0x02, b"\x01") + algs + enc + seq)
    with pytest.raises(MalformedError, match="encryptionInfo"):
        parse_record(data)
    md5 = der.tlv(0x30, der.tlv(0x30, der.encode_oid("1.2.840.113549.2.5")))
    with pytest.raises(MalformedError, match="not supported"):
        parse_record(der.tlv(0x30, der.tlv(0x02, b"\x01") + md5 + seq))
    empty = der.tlv(0x30, der.tlv(0x02, b"\x01") + algs + der.tlv(0x30, b""))
    with pytest.raises(MalformedError, match="0 chains"):
        parse_record(empty)
