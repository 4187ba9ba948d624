"""RFC 9162 §2.1: hashing, roots, inclusion and consistency proofs.

Known answers are the RFC 6962 test tree used by Go's transparency-dev/merkle
(testonly/constants.go, proof/verify_test.go) and Trillian, and the golden roots
of transparency-dev/merkle compact/range_test.go (TestGetRootHashGolden).
"""

from __future__ import annotations

import base64
import functools
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier.errors import MalformedError, VerificationError
from verifier.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from verifier.tiles import CompactRange

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
# ROOTS[n] is the root of the first n leaves.
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
HASHES = [leaf_hash(x) for x in LEAVES]


def h(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


# (index, size, proof): transparency-dev/merkle reference_test.go, 0-based indexes.
INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 2, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    (1, 2, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# (old size, new size, proof): the CT / transparency-dev consistency vectors.
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# compact/range_test.go TestGetRootHashGolden: leaf i is bytes([i & 0xff, i >> 8 & 0xff]).
GOLDEN_ROOTS = {
    10: "VjWMPSYNtCuCNlF/RLnQy6HcwSk6CIipfxm+hettA+4=",
    15: "j4SulYmocFuxdeyp12xXCIgK6PekBcxzAIj4zbQzNEI=",
    16: "c+4Uc6BCMOZf/v3NZK1kqTUJe+bBoFtOhP+P3SayKRE=",
    100: "dUh9hYH88p0CMoHkdr1wC2szbhcLAXOejWpINIooKUY=",
    255: "SmdsuKUqiod3RX2jyF2M6JnbdE4QuTwwipfAowI4/i0=",
    256: "qFI0t/tZ1MdOYgyPpPzHFiZVw86koScXy9q3FU5casA=",
    1000: "RXrgb8xHd55Y48FbfotJwCbV82Kx22LZfEbmBGAvwlQ=",
    4095: "cWRFdQhPcjn9WyBXE/r1f04ejxIm5lvg40DEpRBVS0w=",
    4096: "6uU/phfHg1n/GksYT6TO9aN8EauMCCJRl3dIK0HDs2M=",
}


def golden_hashes(n: int) -> list[bytes]:
    return [leaf_hash(bytes([i & 0xFF, (i >> 8) & 0xFF])) for i in range(n)]


def hashes_of(n: int) -> list[bytes]:
    return [leaf_hash(b"leaf %d" % i) for i in range(n)]


# ---------------------------------------------------------------- hashing


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


def test_leaf_and_node_hash_known_answers() -> None:
    # transparency-dev/merkle rfc6962_test.go TestRFC6962Hasher.
    assert leaf_hash(b"") == ROOTS[1]
    assert leaf_hash(b"L123456") == h(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    # A leaf whose bytes are two concatenated hashes does not hash like the node.
    a, b = HASHES[0], HASHES[1]
    assert leaf_hash(a + b) != node_hash(a, b)


@pytest.mark.parametrize("n", range(9))
def test_rfc6962_roots(n: int) -> None:
    assert root_from_leaf_hashes(HASHES[:n]) == ROOTS[n]


@pytest.mark.parametrize(("n", "root"), sorted(GOLDEN_ROOTS.items()))
def test_golden_roots_of_transparency_dev(n: int, root: str) -> None:
    hashes = golden_hashes(n)
    assert root_from_leaf_hashes(hashes) == base64.b64decode(root)
    cr = CompactRange()
    for x in hashes:
        cr.append(x)
    assert cr.root() == base64.b64decode(root)


def _recursive_root(hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH written as the definition: an independent check."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(_recursive_root(hashes[:k]), _recursive_root(hashes[k:]))


def test_bottom_up_root_equals_the_recursive_definition() -> None:
    hashes = hashes_of(300)
    for n in range(301):
        assert root_from_leaf_hashes(hashes[:n]) == _recursive_root(hashes[:n])


# ---------------------------------------------------------------- inclusion


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_known_answers(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(index, HASHES[:size]) == proof
    verify_inclusion(HASHES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_known_answers_corrupted(index: int, size: int, proof: list[bytes]) -> None:
    # The probes of transparency-dev/merkle verify_test.go corruptInclusionProof.
    root, leaf = ROOTS[size], HASHES[index]
    some = h("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, EMPTY_ROOT, leaf, proof),
        (index, size, some, leaf, proof),
        (index, size, root, some, proof),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [root, *proof]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((index, size, root, leaf, bad))
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], some, *proof[1:]]))
    for i, n, r, lh, p in probes:
        with pytest.raises(VerificationError):
            verify_inclusion(lh, i, n, p, r)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (1, 1), (-1, 5), (5, 5)])
def test_inclusion_index_outside_tree(index: int, size: int) -> None:
    with pytest.raises(VerificationError, match="is not below tree size"):
        verify_inclusion(HASHES[0], index, size, [], ROOTS[max(size, 0)])
    with pytest.raises(MalformedError):
        inclusion_proof(index, HASHES[: max(size, 0)])


def test_inclusion_single_entry() -> None:
    verify_inclusion(ROOTS[1], 0, 1, [], ROOTS[1])
    with pytest.raises(VerificationError):
        verify_inclusion(ROOTS[1], 0, 1, [], ROOTS[2])


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33])
def test_inclusion_wrong_hash_lengths_are_malformed(bad: bytes) -> None:
    proof = inclusion_proof(2, HASHES[:5])
    with pytest.raises(MalformedError, match="leaf"):
        verify_inclusion(bad, 2, 5, proof, ROOTS[5])
    with pytest.raises(MalformedError, match="root"):
        verify_inclusion(HASHES[2], 2, 5, proof, bad)
    with pytest.raises(MalformedError, match="proof"):
        verify_inclusion(HASHES[2], 2, 5, [proof[0], bad, proof[2]], ROOTS[5])


def test_every_index_of_every_size_proves() -> None:
    """Every index of every size 1..300 (45,150 proofs), with proofs from an
    independent memoised PATH (RFC 9162 §2.1.3.1); the reference generator must
    agree with it on a sample."""
    for n in range(1, 301):
        root = _mth(0, n)
        assert root == ROOTS_300[n]
        for i in range(n):
            proof = _path(i, 0, n)
            verify_inclusion(HASHES_300[i], i, n, proof, root)
            if i % 37 == 0 and n % 11 == 0:
                assert inclusion_proof(i, HASHES_300[:n]) == proof


HASHES_300 = hashes_of(300)
ROOTS_300 = [root_from_leaf_hashes(HASHES_300[:n]) for n in range(301)]


@functools.cache
def _mth(lo: int, hi: int) -> bytes:
    """MTH(HASHES_300[lo:hi]) by the recursive definition, memoised."""
    if hi - lo == 1:
        return HASHES_300[lo]
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    return node_hash(_mth(lo, lo + k), _mth(lo + k, hi))


def _path(i: int, lo: int, hi: int) -> list[bytes]:
    if hi - lo == 1:
        return []
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    if i < k:
        return [*_path(i, lo, lo + k), _mth(lo + k, hi)]
    return [*_path(i - k, lo + k, hi), _mth(lo, lo + k)]


def inclusion_shape(index: int, size: int) -> list[bool] | None:
    """The left/right pattern of the RFC 9162 §2.1.3.2 fold, None if out of range.

    A proof binds (index, size) only through this pattern: a different size
    with the same pattern (index 0 in sizes 3 and 4, say) verifies the same
    proof against the same root. That is why the checkpoint must bind the size.
    """
    if not 0 <= index < size:
        return None
    fn, sn, out = index, size - 1, []
    while sn:
        left = bool(fn & 1 or fn == sn)
        out.append(left)
        if left and not fn & 1:
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
    return out


def consistency_shape(m: int, n: int) -> tuple[bool, list[bool]] | None:
    """The pattern of the RFC 9162 §2.1.4.2 fold (see :func:`inclusion_shape`)."""
    if not 0 < m < n:
        return None
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    out = []
    while sn:
        both = bool(fn & 1 or fn == sn)
        out.append(both)
        if both and not fn & 1:
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        fn >>= 1
        sn >>= 1
    return m & (m - 1) == 0, out


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, 300))
    return size, draw(st.integers(0, size - 1))


@settings(max_examples=300, deadline=None)
@given(tree_and_index())
def test_inclusion_property_valid(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_proof(index, HASHES_300[:size])
    verify_inclusion(HASHES_300[index], index, size, proof, ROOTS_300[size])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree_and_index(), st.data())
def test_inclusion_property_any_change_fails(case: tuple[int, int], data: st.DataObject) -> None:
    """Every mutation fails with VerificationError: never passes, never another type."""
    size, index = case
    proof = inclusion_proof(index, HASHES_300[:size])
    leaf, root = HASHES_300[index], ROOTS_300[size]
    kinds = ["index", "size", "root", "leaf", "extend"]
    if proof:
        kinds += ["flip", "truncate", "swap"]
    kind = data.draw(st.sampled_from(kinds))
    args = [leaf, index, size, proof, root]
    if kind == "flip":
        i = data.draw(st.integers(0, len(proof) - 1))
        byte = data.draw(st.integers(0, 31))
        bit = data.draw(st.integers(0, 7))
        bad = bytearray(proof[i])
        bad[byte] ^= 1 << bit
        args[3] = [*proof[:i], bytes(bad), *proof[i + 1 :]]
    elif kind == "truncate":
        args[3] = proof[: data.draw(st.integers(0, len(proof) - 1))]
    elif kind == "extend":
        extra = data.draw(st.lists(st.sampled_from(HASHES_300[:8]), min_size=1, max_size=3))
        args[3] = [*proof, *extra] if data.draw(st.booleans()) else [*extra, *proof]
    elif kind == "swap":
        i = data.draw(st.integers(0, len(proof) - 1))
        other = data.draw(st.sampled_from(HASHES_300))
        if other == proof[i]:
            return
        args[3] = [*proof[:i], other, *proof[i + 1 :]]
    elif kind == "index":
        other_index = data.draw(st.integers(-3, size + 3).filter(lambda j: j != index))
        if inclusion_shape(other_index, size) == inclusion_shape(index, size):
            return  # same path shape: the proof cannot tell (see inclusion_shape)
        args[1] = other_index
    elif kind == "size":
        other_size = data.draw(st.integers(-1, 320).filter(lambda n: n != size))
        if inclusion_shape(index, other_size) == inclusion_shape(index, size):
            return
        args[2] = other_size
    elif kind == "root":
        args[4] = data.draw(st.sampled_from(ROOTS_300).filter(lambda r: r != root))
    elif kind == "leaf":
        args[0] = data.draw(st.sampled_from(HASHES_300).filter(lambda x: x != leaf))
    with pytest.raises(VerificationError):
        verify_inclusion(*args)  # type: ignore[arg-type]


def test_size_is_bound_only_through_the_path_shape() -> None:
    # Documented RFC 9162 behaviour, and the reason a proof must always be checked
    # against a checkpoint's size *and* root: index 0 has the same path in sizes 3
    # and 4, so the size-3 proof also "verifies" with size 4 against the size-3 root.
    proof = inclusion_proof(0, HASHES[:3])
    assert inclusion_shape(0, 3) == inclusion_shape(0, 4)
    verify_inclusion(HASHES[0], 0, 4, proof, ROOTS[3])
    with pytest.raises(VerificationError):
        verify_inclusion(HASHES[0], 0, 4, proof, ROOTS[4])
    assert inclusion_shape(0, 5) != inclusion_shape(0, 3)
    with pytest.raises(VerificationError):
        verify_inclusion(HASHES[0], 0, 5, proof, ROOTS[3])


def test_interior_node_is_not_accepted_as_a_leaf() -> None:
    # The second-preimage attack RFC 9162's 0x00/0x01 prefixes prevent: present
    # the node over leaves 0 and 1 as a leaf of a tree "of size 2" hidden inside.
    hashes = hashes_of(4)
    node = node_hash(hashes[0], hashes[1])
    root = root_from_leaf_hashes(hashes)
    proof = [node_hash(hashes[2], hashes[3])]
    # It verifies as index 0 of a 2-leaf tree only with the node itself as leaf hash:
    verify_inclusion(node, 0, 2, proof, root)
    # but no leaf bytes hash to it: a leaf "a || b" hashes with the 0x00 prefix.
    assert leaf_hash(hashes[0] + hashes[1]) != node
    with pytest.raises(VerificationError):
        verify_inclusion(leaf_hash(hashes[0] + hashes[1]), 0, 2, proof, root)


# ---------------------------------------------------------------- consistency


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY_VECTORS)
def test_consistency_known_answers(m: int, n: int, proof: list[bytes]) -> None:
    assert consistency_proof(m, HASHES[:n]) == proof
    verify_consistency(m, n, proof, ROOTS[m], ROOTS[n])
    if proof:
        with pytest.raises(VerificationError):
            verify_consistency(m, n, proof, ROOTS[m - 1], ROOTS[n])
        with pytest.raises(VerificationError):
            verify_consistency(m, n, proof[:-1], ROOTS[m], ROOTS[n])


def _subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
    """SUBPROOF of RFC 9162 §2.1.4.1 over HASHES_300[lo:hi], memoised hashes."""
    if m == hi - lo:
        return [] if complete else [_mth(lo, hi)]
    k = 1 << ((hi - lo - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, lo, lo + k, complete), _mth(lo + k, hi)]
    return [*_subproof(m - k, lo + k, hi, False), _mth(lo, lo + k)]


def test_every_consistency_pair_proves() -> None:
    """Every 0 <= m <= n <= 300 (45,451 pairs, RFC 9162 §2.1.4), proofs from an
    independent memoised SUBPROOF; the reference generator agrees on a sample."""
    for n in range(0, 301):
        for m in range(0, n + 1):
            proof = _subproof(m, 0, n, True) if 0 < m < n else []
            verify_consistency(m, n, proof, ROOTS_300[m], ROOTS_300[n])
            if m % 17 == 0 and n % 13 == 0:
                assert consistency_proof(m, HASHES_300[:n]) == proof


@st.composite
def size_pair(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, 300))
    return draw(st.integers(1, n)), n


@settings(max_examples=300, deadline=None)
@given(size_pair())
def test_consistency_property_valid(pair: tuple[int, int]) -> None:
    m, n = pair
    proof = consistency_proof(m, HASHES_300[:n])
    verify_consistency(m, n, proof, ROOTS_300[m], ROOTS_300[n])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size_pair(), st.data())
def test_consistency_property_any_change_fails(pair: tuple[int, int], data: st.DataObject) -> None:
    m, n = pair
    proof = consistency_proof(m, HASHES_300[:n])
    args = [m, n, proof, ROOTS_300[m], ROOTS_300[n]]
    kinds = ["old_root", "new_root", "extend", "old_size", "new_size"]
    if proof:
        kinds += ["flip", "truncate"]
    kind = data.draw(st.sampled_from(kinds))
    if kind == "flip":
        i = data.draw(st.integers(0, len(proof) - 1))
        bad = bytearray(proof[i])
        bad[data.draw(st.integers(0, 31))] ^= 1 << data.draw(st.integers(0, 7))
        args[2] = [*proof[:i], bytes(bad), *proof[i + 1 :]]
    elif kind == "truncate":
        args[2] = proof[: data.draw(st.integers(0, len(proof) - 1))]
    elif kind == "extend":
        extra = data.draw(st.lists(st.sampled_from(HASHES_300[:8]), min_size=1, max_size=3))
        args[2] = [*proof, *extra] if data.draw(st.booleans()) else [*extra, *proof]
    elif kind == "old_root":
        args[3] = data.draw(st.sampled_from(ROOTS_300).filter(lambda r: r != ROOTS_300[m]))
    elif kind == "new_root":
        args[4] = data.draw(st.sampled_from(ROOTS_300).filter(lambda r: r != ROOTS_300[n]))
    elif kind == "old_size":
        other = data.draw(st.integers(-2, 302).filter(lambda x: x != m))
        if consistency_shape(other, n) == consistency_shape(m, n):
            return
        args[0] = other
    elif kind == "new_size":
        other = data.draw(st.integers(-2, 302).filter(lambda x: x != n))
        if consistency_shape(m, other) == consistency_shape(m, n):
            return
        args[1] = other
    with pytest.raises(VerificationError):
        verify_consistency(*args)  # type: ignore[arg-type]


def test_consistency_rollback_is_refused() -> None:
    proof = consistency_proof(5, HASHES_300[:9])
    with pytest.raises(VerificationError, match="smaller than old size"):
        verify_consistency(9, 5, proof, ROOTS_300[9], ROOTS_300[5])


def test_consistency_equal_sizes() -> None:
    verify_consistency(7, 7, [], ROOTS_300[7], ROOTS_300[7])
    with pytest.raises(VerificationError, match="two different roots"):
        verify_consistency(7, 7, [], ROOTS_300[7], ROOTS_300[8])
    with pytest.raises(VerificationError, match="must be empty"):
        verify_consistency(7, 7, [ROOTS_300[1]], ROOTS_300[7], ROOTS_300[7])


def test_consistency_from_the_empty_tree() -> None:
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 12, [], EMPTY_ROOT, ROOTS_300[12])
    with pytest.raises(VerificationError, match="must be empty"):
        verify_consistency(0, 12, [ROOTS_300[1]], EMPTY_ROOT, ROOTS_300[12])
    with pytest.raises(VerificationError, match="empty tree's hash"):
        verify_consistency(0, 12, [], ROOTS_300[3], ROOTS_300[12])
    with pytest.raises(VerificationError, match="empty tree's hash"):
        verify_consistency(0, 0, [], ROOTS_300[3], ROOTS_300[3])


@pytest.mark.parametrize(("m", "n"), [(-1, 5), (-1, -1), (3, 2), (1, 0), (0, -1)])
def test_consistency_size_bounds(m: int, n: int) -> None:
    with pytest.raises(VerificationError):
        verify_consistency(m, n, [], ROOTS_300[1], ROOTS_300[2])


def test_consistency_reference_bounds() -> None:
    with pytest.raises(MalformedError):
        consistency_proof(-1, HASHES_300[:4])
    with pytest.raises(MalformedError):
        consistency_proof(5, HASHES_300[:4])
    assert consistency_proof(0, HASHES_300[:4]) == []
    assert consistency_proof(4, HASHES_300[:4]) == []


def test_consistency_wrong_hash_lengths_are_malformed() -> None:
    proof = consistency_proof(3, HASHES_300[:7])
    with pytest.raises(MalformedError):
        verify_consistency(3, 7, proof, ROOTS_300[3][:31], ROOTS_300[7])
    with pytest.raises(MalformedError):
        verify_consistency(3, 7, proof, ROOTS_300[3], ROOTS_300[7] + b"\x00")
    with pytest.raises(MalformedError):
        verify_consistency(3, 7, [proof[0][:16], *proof[1:]], ROOTS_300[3], ROOTS_300[7])
