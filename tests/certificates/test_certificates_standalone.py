"""The verifier stands alone: its wheel, installed by itself into a fresh virtual
environment, verifies packages, certificates and log exports with networking
unavailable, and has neither the rest of the project nor the network to lean on.

The wheel is built from ``verifier/pyproject.toml`` and installed with pip
(its dependencies, cryptography, rfc3161-client, pyHanko and segno, come from
the local pip cache or the package index). Then every run happens inside ``unshare -n``: a
new network namespace whose only interface, loopback, is down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cert_helpers import World, build_world

REPO = Path(__file__).resolve().parents[2]
UNSHARE = shutil.which("unshare")

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8", "PIP_NO_INPUT": "1"}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _offline(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert UNSHARE is not None
    return _run([UNSHARE, "--net", "--", *args], cwd)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("standalone-world"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (
        UNSHARE is None
        or os.geteuid() != 0
        or _run([UNSHARE, "--net", "true"], Path("/")).returncode
    ):
        pytest.fail("this test needs 'unshare --net' (root on Linux) to take the network away")
    root = tmp_path_factory.mktemp("standalone")
    src = root / "src"
    shutil.copytree(REPO / "verifier", src, ignore=shutil.ignore_patterns("__pycache__"))
    r = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(root / "dist"), str(src)],
        root,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (root / "dist").glob("evidence_verify-*.whl")
    base = getattr(sys, "_base_executable", sys.executable)
    r = _run([base, "-m", "venv", str(root / "venv")], root)
    assert r.returncode == 0, r.stderr
    pip = str(root / "venv" / "bin" / "pip")
    r = _run([pip, "install", "--disable-pip-version-check", str(wheel)], root)
    assert r.returncode == 0, r.stdout + r.stderr
    return root / "venv"


def test_only_the_verifier_and_its_dependencies_are_installed(venv: Path) -> None:
    r = _run([str(venv / "bin" / "pip"), "list", "--format", "json"], venv)
    names = {d["name"].lower().replace("_", "-") for d in json.loads(r.stdout)}
    allowed = {"evidence-verify", "cryptography", "cffi", "pycparser", "rfc3161-client"}
    # PDF certificates: pyHanko (PAdES) with its validator and their own
    # dependencies, and segno (the page's QR code is laid out again).
    allowed |= {"pyhanko", "pyhanko-certvalidator", "asn1crypto", "segno", "lxml", "tzlocal"}
    allowed |= {"oscrypto", "uritools", "typing-extensions", "certifi", "idna"}
    allowed |= {"aiohttp", "aiohappyeyeballs", "aiosignal", "attrs", "frozenlist"}
    allowed |= {"multidict", "propcache", "yarl"}
    # Progress bars of `evidence-verify log` (on a terminal only).
    allowed |= {"tqdm"}
    assert names - {"pip", "setuptools"} <= allowed
    assert {"evidence-verify", "cryptography", "rfc3161-client", "pyhanko", "segno"} <= names
    for module in ("ledger", "api", "click", "fastapi", "psycopg"):
        r = _offline([str(venv / "bin" / "python"), "-c", f"import {module}"], venv)
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, module


def test_the_network_is_really_gone(venv: Path) -> None:
    code = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=2)"
    r = _offline([str(venv / "bin" / "python"), "-c", code], venv)
    assert r.returncode != 0
    assert "Network is unreachable" in r.stderr, r.stderr


def test_verifies_offline(world: World, venv: Path, tmp_path: Path) -> None:
    for f in (
        world.file_package,
        world.hash_package,
        world.trust_path,
        world.root / "contract.txt",
    ):
        shutil.copy2(f, tmp_path / f.name)
    shutil.copytree(world.export_dir, tmp_path / "export")
    (tmp_path / "cert.json").write_bytes(world.file_cert + b"\n")
    ev = str(venv / "bin" / "evidence-verify")
    trust = ["--trust", "trust.json"]

    r = _offline([ev, "package", "file.zip", *trust], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "VALID"
    r = _offline([ev, "package", "hash.zip", *trust, "--lang", "zh"], tmp_path)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "结论：有效", r.stdout + r.stderr
    r = _offline([ev, "certificate", "cert.json", "--evidence", "contract.txt", *trust], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = _offline([ev, "package", "file.zip", *trust, "--log", "export", "--json"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    checks = {c["key"]: c["status"] for c in json.loads(r.stdout)["checks"]}
    assert checks["revocation"] == "passed" and checks["issuance_logged"] == "passed"
    r = _offline([ev, "log", "export", *trust, "--certificate", "cert.json"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # The package's PDF certificate, on its own.
    import zipfile

    with zipfile.ZipFile(tmp_path / "file.zip") as z:
        (tmp_path / "c.pdf").write_bytes(z.read("certificate.pdf"))
    r = _offline([ev, "pdf", "c.pdf", "--evidence", "contract.txt", *trust], tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stdout + r.stderr

    # Invalid and malformed inputs keep their exit status offline too.
    data = bytearray((tmp_path / "file.zip").read_bytes())
    data[-60] ^= 1
    (tmp_path / "bad.zip").write_bytes(bytes(data))
    r = _offline([ev, "package", "bad.zip", *trust], tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("evidence-verify: error: "), r.stderr
    (tmp_path / "other.txt").write_bytes(b"not the evidence")
    r = _offline([ev, "certificate", "cert.json", "--evidence", "other.txt", *trust], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    # And a URL is, as it should be, unreachable.
    r = _offline([ev, "log", "http://127.0.0.1:8000/log", *trust], tmp_path)
    assert r.returncode == 2 and "cannot fetch" in r.stderr
    assert "Traceback" not in r.stderr
