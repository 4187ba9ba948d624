"""Run the committed vectors and adversarial fixtures of tests/vectors.

Valid vectors must verify; every adversarial fixture must fail with exactly the
error class and a message containing the substring its record names. The
fixtures are read here independently of make_vectors.py, which only writes them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from verifier.canonical import loads_canonical
from verifier.checkpoint import open_checkpoint
from verifier.errors import MalformedError, VerificationError
from verifier.merkle import (
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from verifier.note import VerifierKey, parse_note, verify_note

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text("utf-8"))["fixtures"]
KEYS = {
    label: VerifierKey.from_text(text)
    for label, text in json.loads((VECTORS / "keys.json").read_text("utf-8"))["keys"].items()
}
ERRORS = {"MalformedError": MalformedError, "VerificationError": VerificationError}


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text("utf-8"))


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def run_inclusion(case: dict[str, Any]) -> None:
    verify_inclusion(
        bytes.fromhex(case["leaf_hash"]),
        case["index"],
        case["size"],
        unhex(case["proof"]),
        bytes.fromhex(case["root"]),
    )


def run_consistency(case: dict[str, Any]) -> None:
    verify_consistency(
        case["old_size"],
        case["new_size"],
        unhex(case["proof"]),
        bytes.fromhex(case["old_root"]),
        bytes.fromhex(case["new_root"]),
    )


def run_fixture(entry: dict[str, Any]) -> None:
    data = (VECTORS / entry["file"]).read_bytes()
    kind = entry["kind"]
    if kind == "inclusion":
        run_inclusion(json.loads(data))
    elif kind == "consistency":
        run_consistency(json.loads(data))
    elif kind == "note":
        verify_note(parse_note(data), [KEYS[k] for k in entry["keys"]])
    elif kind == "checkpoint":
        open_checkpoint(data, [KEYS[k] for k in entry["keys"]], origin=entry.get("origin"))
    elif kind == "jcs":
        loads_canonical(data)
    elif kind == "vkey":
        VerifierKey.from_text(data.decode("utf-8"))
    else:
        pytest.fail(f"unknown kind {kind!r}")


def test_tree() -> None:
    tree = load("merkle-tree.json")
    hashes = [leaf_hash(x.encode()) for x in tree["leaves"]]
    assert hashes == unhex(tree["leaf_hashes"])
    for n, root in enumerate(unhex(tree["roots"])):
        assert root_from_leaf_hashes(hashes[:n]) == root


def test_valid_inclusion_vectors() -> None:
    cases = load("inclusion-valid.json")["cases"]
    assert len(cases) == 136
    for case in cases:
        run_inclusion(case)


def test_valid_consistency_vectors() -> None:
    cases = load("consistency-valid.json")["cases"]
    assert len(cases) == 153
    for case in cases:
        run_consistency(case)


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_fixture(entry: dict[str, Any]) -> None:
    expect = entry["expect"]
    if entry["file"].endswith(".json") and entry["kind"] in ("inclusion", "consistency"):
        assert load(entry["file"])["expect"] == expect  # the record travels with the file
    if expect.get("valid"):
        run_fixture(entry)
        return
    with pytest.raises(ERRORS[expect["error"]]) as info:
        run_fixture(entry)
    assert type(info.value) is ERRORS[expect["error"]]
    assert expect["message"] in str(info.value)


def test_every_file_is_accounted_for() -> None:
    listed = {e["file"] for e in MANIFEST}
    data_files = {"manifest.json", "keys.json", "merkle-tree.json"}
    data_files |= {"inclusion-valid.json", "consistency-valid.json"}
    own = {"README.md", "make_vectors.py"}
    present = {p.name for p in VECTORS.iterdir() if p.is_file()}
    assert present - own - data_files == listed
    adversarial = [e for e in MANIFEST if not e["expect"].get("valid")]
    assert len(adversarial) >= 50


def test_make_vectors_reproduces_the_committed_files(tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    result = subprocess.run(
        [sys.executable, str(VECTORS / "make_vectors.py"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    generated = {p.name: p.read_bytes() for p in out.iterdir()}
    committed = {
        p.name: p.read_bytes()
        for p in VECTORS.iterdir()
        if p.is_file() and p.name not in ("README.md", "make_vectors.py")
    }
    assert sorted(generated) == sorted(committed)
    for name, data in generated.items():
        assert data == committed[name], f"{name} differs: run tests/vectors/make_vectors.py"
