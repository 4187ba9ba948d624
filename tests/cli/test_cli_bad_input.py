"""Bad input: one ``error: ...`` line on stderr, no traceback, non-zero exit, nothing
half-written (log size unchanged, audit still clean, foreign files untouched).

These run the console script as a real process: what a shell sees is the point.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_support import ORIGIN, Home, assert_one_line_error, filled_home_at, init_home, run_el, sha


@pytest.fixture
def filled_home(tmp_path: Path) -> Home:
    """A ledger with 20 hash deposits, sealed."""
    return filled_home_at(tmp_path / "home")


def _fails(r: object, code: int, *needles: str) -> str:
    import subprocess

    assert isinstance(r, subprocess.CompletedProcess)
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "", r.stdout
    return assert_one_line_error(r.stderr, *needles)


def _unchanged(home: Home, size: int) -> None:
    assert home.size() == size
    assert home.assert_audits_clean()["entries"] == size


# -- malformed hashes ----------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--sha256", "abc"], "sha256"),
        (["--sha256", sha(1)[:-1]], "sha256"),
        (["--sha256", sha(1) + "0"], "sha256"),
        (["--sha256", sha(1)[:-1] + "g"], "sha256"),
        (["--sha256", " " * 64], "sha256"),
        (["--sha256", sha(1), "--sm3", "xyz"], "sm3"),
        (["--sha256", sha(1), "--sm3", sha(2)[:-2]], "sm3"),
        (["--sha256", sha(1), "--title", "x" * 2000], "title"),
        (["--sha256", sha(1), "--title", "bell\x07"], "title"),
    ],
    ids=[
        "short",
        "63-digits",
        "65-digits",
        "non-hex",
        "blank",
        "bad-sm3",
        "short-sm3",
        "title-too-long",
        "title-control-char",
    ],
)
def test_malformed_deposit(filled_home: Home, args: list[str], needle: str) -> None:
    _fails(filled_home.proc("deposit", *args), 2, needle)
    _unchanged(filled_home, 20)


@pytest.mark.parametrize(
    "bad", [sha(1)[:-1], sha(1) + "ff", "z" * 64, sha(1)[:10] + " " + sha(1)[11:], "0x" + "a" * 62]
)
def test_hashes_from_with_bad_line_500_appends_nothing(
    filled_home: Home, tmp_path: Path, bad: str
) -> None:
    lines = [sha(i) for i in range(1000)]
    lines[499] = bad
    f = tmp_path / "list.txt"
    f.write_text("\n".join(lines) + "\n")
    _fails(filled_home.proc("deposit", "--hashes-from", str(f)), 2, ":500:")
    _unchanged(filled_home, 20)


def test_hashes_from_binary_garbage(filled_home: Home, tmp_path: Path) -> None:
    f = tmp_path / "list.bin"
    f.write_bytes((sha(0) + "\n").encode() + b"\xff\xfe\x00garbage\n")
    r = filled_home.proc("deposit", "--hashes-from", str(f))
    assert r.returncode != 0
    assert r.stdout == ""
    assert_one_line_error(r.stderr)
    _unchanged(filled_home, 20)


# -- the home, its key, its database ---------------------------------------------
def test_missing_home(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for cmd in (["stats"], ["deposit", "--sha256", sha(1)], ["seal"], ["audit"], ["vkey"]):
        _fails(run_el(["--home", str(missing), *cmd]), 1, "no ledger")
    assert not missing.exists()


@contextmanager
def _swapped(path: Path, data: bytes | None = None, mode: int | None = None) -> Iterator[Path]:
    """Temporarily replace a file's content and/or mode; restore it afterwards.

    A database is swapped together with its ``-wal`` and ``-shm`` files: a stale
    WAL next to a different file would be replayed into it by SQLite.
    """
    saved: list[tuple[Path, Path]] = []
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.exists():
            aside = p.with_name(p.name + ".saved")
            if p == path:
                shutil.copy2(p, aside)
            else:
                os.replace(p, aside)
            saved.append((aside, p))
    try:
        if data is not None:
            path.write_bytes(data)
        if mode is not None:
            path.chmod(mode)
        yield path
    finally:
        for p in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        for aside, p in saved:
            os.replace(aside, p)


KEY_CASES = {
    "corrupt": (b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", None),
    "empty": (b"", None),
    "mode-0644": (None, 0o644),
    "mode-0640": (None, 0o640),
}


@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_bad_key_file(filled_home: Home, case: str) -> None:
    data, mode = KEY_CASES[case]
    key = filled_home.path / "keys" / "log.key"
    with _swapped(key, data, mode):
        for cmd in (["deposit", "--sha256", sha("k")], ["seal"], ["vkey"], ["audit"]):
            _fails(filled_home.proc(*cmd), 1, "key:")
    _unchanged(filled_home, 20)


def test_missing_key_file(filled_home: Home) -> None:
    key = filled_home.path / "keys" / "log.key"
    with _swapped(key):
        key.unlink()
        _fails(filled_home.proc("deposit", "--sha256", sha("k")), 1, "key:")
    _unchanged(filled_home, 20)


def test_corrupt_config(filled_home: Home) -> None:
    with _swapped(filled_home.path / "config.json", b"{not json"):
        _fails(filled_home.proc("deposit", "--sha256", sha("c")), 1, "config")
    with _swapped(filled_home.path / "config.json", b'{"format": "something-else"}'):
        _fails(filled_home.proc("stats"), 1, "config")
    _unchanged(filled_home, 20)


def test_database_that_is_not_sqlite(filled_home: Home) -> None:
    db = filled_home.path / "ledger.db"
    junk = b"this is not a database\n" * 300
    with _swapped(db, junk):
        for cmd in (["deposit", "--sha256", sha("d")], ["seal"], ["audit"], ["stats"]):
            _fails(filled_home.proc(*cmd), 1, "database")
        assert db.read_bytes() == junk
    _unchanged(filled_home, 20)


def _foreign_sqlite(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("create table meta (key text primary key, value text)")
    conn.execute("insert into meta values ('format', 'somebody-else/7')")
    conn.execute("create table invoices (id integer primary key, total integer)")
    conn.execute("insert into invoices values (1, 100)")
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_sqlite_database_that_is_not_ours(filled_home: Home, tmp_path: Path) -> None:
    db = filled_home.path / "ledger.db"
    foreign = _foreign_sqlite(tmp_path / "foreign.db")
    with _swapped(db, foreign):
        for cmd in (["deposit", "--sha256", sha("f")], ["seal"], ["audit"], ["stats"]):
            _fails(filled_home.proc(*cmd), 1, "not an evidence ledger")
        # Refusing somebody else's database must not modify it (not even its journal mode).
        assert db.read_bytes() == foreign
        assert not Path(str(db) + "-wal").exists()
    _unchanged(filled_home, 20)


def test_sqlite_database_without_meta_table(filled_home: Home, tmp_path: Path) -> None:
    db = filled_home.path / "ledger.db"
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("create table t (x)")
    conn.commit()
    conn.close()
    with _swapped(db, other.read_bytes()):
        _fails(filled_home.proc("deposit", "--sha256", sha("m")), 1, "not an evidence ledger")
    _unchanged(filled_home, 20)


# -- init ----------------------------------------------------------------------
@pytest.mark.parametrize("url", ["mysql://localhost/x", "ftp://x", "ledger.db", "sqlite"])
def test_init_unknown_database_url_scheme(tmp_path: Path, url: str) -> None:
    home = tmp_path / "home"
    _fails(
        run_el(["--home", str(home), "init", "--origin", ORIGIN, "--database-url", url]),
        1,
        "database",
    )
    assert not (home / "config.json").exists()
    assert not (home / "keys" / "log.key").exists()
    # Nothing half-made stands in the way of a correct init.
    h = init_home(home)
    _unchanged(h, 0)


def test_init_onto_a_foreign_database_leaves_it_alone(tmp_path: Path) -> None:
    foreign_path = tmp_path / "foreign.db"
    foreign = _foreign_sqlite(foreign_path)
    home = tmp_path / "home"
    r = run_el(["--home", str(home), "init", "--database-url", f"sqlite:///{foreign_path}"])
    _fails(r, 1, "database")
    assert foreign_path.read_bytes() == foreign
    assert not (home / "config.json").exists()
    assert not (home / "keys" / "log.key").exists()


@pytest.mark.parametrize(
    "origin",
    [
        "",
        "has space/log",
        "https://x.test/log",
        "a+b.test/log",
        "-dash.test",
        "x" * 300,
        "ünï.test",
    ],
)
def test_init_bad_origin(tmp_path: Path, origin: str) -> None:
    home = tmp_path / "home"
    _fails(run_el(["--home", str(home), "init", "--origin", origin]), 1, "origin")
    assert not home.exists()


def test_hashes_from_error_names_the_file_line_despite_blank_lines(
    filled_home: Home, tmp_path: Path
) -> None:
    lines = ["", "   "] + [sha(i) for i in range(600)]
    lines[499] = "not-a-digest"  # file line 500
    f = tmp_path / "list.txt"
    f.write_text("\n".join(lines) + "\n")
    _fails(filled_home.proc("deposit", "--hashes-from", str(f)), 2, ":500:", "not-a-digest")
    _unchanged(filled_home, 20)
