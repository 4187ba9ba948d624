"""Random mutation of any byte of a valid package never yields "valid".

Every byte of a package is either checked against the certificate (the
evidence, certificate.json, proof.txt, README.txt, certificate.pdf) or fixed
by the canonical zip layout (headers, directory, end record), so any change
must make verification fail: with an invalid report or a MalformedError,
never a crash and never a pass.

The exhaustive and the many random mutations run on packages without
``certificate.pdf`` (the same zip layout; verifying a PDF signature costs
about 100 ms, too much for every byte); fewer random mutations run on the
ledger's own packages, which hold the PDF.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cert_helpers import FILE_CONTENT, World, build_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier.certificate import Certificate
from verifier.errors import Error
from verifier.package import verify_package, write_package
from verifier.trust import Trust, read_trust


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("mutation"))


@pytest.fixture(scope="module")
def trust(world: World) -> Trust:
    return read_trust(world.trust_path)


@pytest.fixture(scope="module")
def plain(world: World) -> dict[str, bytes]:
    """The world's packages rebuilt without certificate.pdf."""
    out = {}
    for which, cert, evidence in (
        ("file", world.file_cert, FILE_CONTENT),
        ("hash", world.hash_cert, None),
    ):
        buf = io.BytesIO()
        write_package(buf, Certificate.from_json(cert), io.BytesIO(evidence) if evidence else None)
        out[which] = buf.getvalue()
    return out


def _verdict(path: Path, data: bytes, trust: Trust) -> str:
    path.write_bytes(data)
    try:
        report = verify_package(path, trust)
    except Error as e:
        return f"error: {e}"
    return "valid" if report.valid else "invalid"


@pytest.mark.parametrize("which", ["file", "hash"])
def test_pristine_packages_are_valid(
    world: World, trust: Trust, plain: dict[str, bytes], which: str
) -> None:
    pkg = world.file_package if which == "file" else world.hash_package
    assert _verdict(world.root / f"pristine-{which}.zip", pkg.read_bytes(), trust) == "valid"
    assert _verdict(world.root / f"plain-{which}.zip", plain[which], trust) == "valid"


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_mutations_never_yield_valid(
    world: World, trust: Trust, plain: dict[str, bytes], data: st.DataObject
) -> None:
    which = data.draw(st.sampled_from(["file", "hash"]))
    _mutate(world, trust, which, plain[which], data)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_mutations_of_packages_with_a_pdf_never_yield_valid(
    world: World, trust: Trust, data: st.DataObject
) -> None:
    which = data.draw(st.sampled_from(["file", "hash"]))
    pkg = world.file_package if which == "file" else world.hash_package
    _mutate(world, trust, which, pkg.read_bytes(), data)


def _mutate(world: World, trust: Trust, which: str, original: bytes, data: st.DataObject) -> None:
    mutated = bytearray(original)
    positions = data.draw(
        st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=4, unique=True)
    )
    for pos in positions:
        mutated[pos] = data.draw(st.integers(0, 255).filter(lambda b, p=pos: b != original[p]))
    verdict = _verdict(world.root / "mutated.zip", bytes(mutated), trust)
    assert verdict != "valid", f"{which} package valid after changing bytes {positions}"


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_truncation_and_insertion_never_yield_valid(
    world: World, trust: Trust, plain: dict[str, bytes], data: st.DataObject
) -> None:
    original = plain["file"]
    if data.draw(st.booleans()):
        pos = data.draw(st.integers(0, len(original) - 1))  # delete at least one byte
        mutated = original[:pos] + original[pos + data.draw(st.integers(1, 64)) :]
    else:
        pos = data.draw(st.integers(0, len(original)))
        mutated = original[:pos] + data.draw(st.binary(min_size=1, max_size=16)) + original[pos:]
    assert _verdict(world.root / "cut.zip", mutated, trust) != "valid"


@pytest.mark.parametrize("which", ["file", "hash"])
def test_every_single_byte_flip_is_caught(
    world: World, trust: Trust, plain: dict[str, bytes], which: str
) -> None:
    """Exhaustively: flipping the low bit of any one byte of a package invalidates it."""
    original = plain[which]
    path = world.root / "flip.zip"
    survivors = []
    for pos in range(len(original)):
        mutated = bytearray(original)
        mutated[pos] ^= 0x01
        if _verdict(path, bytes(mutated), trust) == "valid":
            survivors.append(pos)
    assert survivors == []
