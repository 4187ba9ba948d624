"""Bad input and bad homes: typed, one-line errors, and nothing half-written."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from ledger_helpers import ORIGIN, hash_drafts

from ledger.audit import audit
from ledger.core import Ledger
from ledger.errors import ConfigError, InvalidInput, LedgerError, StorageError, TooLarge
from ledger.events import Draft, evidence_deposited, key_registered, make_draft
from ledger.services import OPERATOR, Services
from verifier.note import VerifierKey
from verifier.record import MAX_LEAF_SIZE, decode_record

GOOD = "ab" * 32

BAD_DIGESTS = [
    "",
    "ab" * 31,  # 31 bytes
    "ab" * 33,  # 33 bytes
    "ab" * 31 + "zz",  # not hex
    "ab" * 31 + "a",  # odd length
    "0x" + "ab" * 31,
    "ab" * 16 + " " + "ab" * 15 + "a",
    "ａｂ" * 32,  # full-width letters
    "ab" * 31 + "é1",
]


def one_line(e: BaseException) -> str:
    text = str(e)
    assert text
    assert "\n" not in text
    return text


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_malformed_digests_raise_invalid_input(ledger: Ledger, bad: str) -> None:
    with pytest.raises(InvalidInput) as info:
        Services(ledger).deposits.deposit_hash(OPERATOR, bad)
    assert one_line(info.value).startswith("sha256:")
    with pytest.raises(InvalidInput) as info:
        Services(ledger).deposits.deposit_hash(OPERATOR, GOOD, sm3=bad or "x")
    assert one_line(info.value).startswith("sm3:")
    assert ledger.store.size() == 0


def test_digests_are_normalised_to_lowercase(ledger: Ledger) -> None:
    r = Services(ledger).deposits.deposit_hash(OPERATOR, " " + GOOD.upper() + "\n", sm3="CD" * 32)
    assert (r.sha256, r.sm3) == (GOOD, "cd" * 32)


def test_unknown_kinds_types_and_roles_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        evidence_deposited(kind="rumour", sha256=GOOD)
    with pytest.raises(InvalidInput):
        evidence_deposited(kind="hash", sha256=GOOD, size=-1)
    with pytest.raises(InvalidInput):
        evidence_deposited(kind="hash", sha256=GOOD, title="a\x00b")
    with pytest.raises(InvalidInput):
        make_draft("evidence.deleted", {}, {})


def test_floats_in_a_public_body_are_refused(ledger: Ledger) -> None:
    """The verifier refuses floats in a record, so the ledger must never log one:
    no member of a public body in the catalogue is a float."""
    body = {"certificate_id": "cd" * 32, "evidence_id": "a" * 32, "account_id": "b" * 32}
    for member in body:
        with pytest.raises(InvalidInput, match=f"{member} must be"):
            make_draft("certificate.issued", {**body, member: 1.5}, {"certificate": "{}"})
    with pytest.raises(InvalidInput, match="size must be a non-negative integer"):
        evidence_deposited(kind="hash", sha256=GOOD, size=1.5)  # type: ignore[arg-type]
    # Private bodies are opaque to the verifier (only their commitment is public).
    ledger.append([evidence_deposited(kind="hash", sha256=GOOD, extra={"score": 0.5})])
    ledger.seal()
    audit(ledger.store, ledger.verifier_key, ledger.config.origin)


def _vkey(name_length: int) -> str:
    return VerifierKey.from_public_key("k" * name_length, bytes(32)).to_text()


def _key(name_length: int) -> Draft:
    return key_registered(
        account_id="a" * 32,
        vkey=_vkey(name_length),
        purpose="certificate",
        valid_from="2026-01-01T00:00:00.000000Z",
    )


def test_an_oversize_public_record_is_refused_before_appending(ledger: Ledger) -> None:
    ledger.append(hash_drafts(2))
    with pytest.raises(TooLarge) as info:
        ledger.append(
            [
                *hash_drafts(1),
                _key(MAX_LEAF_SIZE),
            ]
        )
    assert str(MAX_LEAF_SIZE) in one_line(info.value)
    assert ledger.store.size() == 2


def test_the_largest_accepted_record_fits_a_tile_bundle(ledger: Ledger) -> None:
    """The draft's size check is conservative: whatever it accepts can be sealed."""

    draft = _key
    lo, hi = 1, MAX_LEAF_SIZE  # draft(lo) is accepted, draft(hi) refused
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            draft(mid)
            lo = mid
        except TooLarge:
            hi = mid
    appended = ledger.append([draft(lo)])
    leaf = ledger.store.entries(appended[0].index, appended[0].index + 1)[0][3]
    assert MAX_LEAF_SIZE - 300 < len(leaf) <= MAX_LEAF_SIZE
    decode_record(leaf)
    assert ledger.seal().size == 1


def test_an_oversize_private_body_is_refused(ledger: Ledger) -> None:
    with pytest.raises(TooLarge):
        evidence_deposited(kind="hash", sha256=GOOD, extra={"blob": "x" * (16 * MAX_LEAF_SIZE)})


# -- homes that are not ours ------------------------------------------------


@pytest.fixture
def sqlite_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    with Ledger.init(home, origin=ORIGIN) as led:
        Services(led).deposits.deposit_hash(OPERATOR, GOOD)
        led.seal()
    return home


def test_a_database_file_that_is_not_sqlite(sqlite_home: Path) -> None:
    db = sqlite_home / "ledger.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    junk = b"this is not a database, just some text\n" * 200
    db.write_bytes(junk)
    with pytest.raises(StorageError) as info:
        Ledger.open(sqlite_home)
    assert "ledger.db" in one_line(info.value)
    assert db.read_bytes() == junk


@pytest.mark.parametrize("kind", ["foreign", "empty", "other-format"])
def test_a_sqlite_database_that_is_not_ours(sqlite_home: Path, kind: str) -> None:
    db = sqlite_home / "ledger.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    if kind == "foreign":
        conn.execute("create table invoices (id integer primary key, total real)")
        conn.execute("insert into invoices values (1, 9.5)")
    elif kind == "other-format":
        conn.execute("create table meta (key text primary key, value text not null)")
        conn.execute("insert into meta values ('format', 'someone-else/3')")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StorageError) as info:
        Ledger.open(sqlite_home)
    assert "not an evidence ledger" in one_line(info.value)
    assert db.read_bytes() == before, "a database that is not ours was modified"


def test_a_missing_database_file(sqlite_home: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(sqlite_home / "ledger.db") + suffix).unlink(missing_ok=True)
    with pytest.raises(StorageError) as info:
        Ledger.open(sqlite_home)
    assert "does not exist" in one_line(info.value)
    assert not (sqlite_home / "ledger.db").exists()


def test_an_empty_database_is_not_a_ledger(tmp_path: Path, store_url: str) -> None:
    """On either backend, an empty database is not a ledger, and opening it writes nothing."""
    from ledger.config import Config, save_config

    home = tmp_path / "other"
    with Ledger.init(tmp_path / "donor", origin=ORIGIN) as donor:
        key = donor.config.key_path
    cfg = Config(home=home, origin=ORIGIN, database_url=store_url)
    save_config(cfg)
    cfg.key_path.parent.mkdir(parents=True)
    cfg.key_path.write_bytes(key.read_bytes())
    cfg.key_path.chmod(0o600)
    if store_url.startswith("sqlite:"):
        path = Path(store_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()
    with pytest.raises(StorageError) as info:
        Ledger.open(home)
    assert "not an evidence ledger" in one_line(info.value)


def test_opening_a_home_without_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Ledger.open(tmp_path / "nothing")
    assert "no ledger" in one_line(info.value)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "config.json").write_text("{not json")
    with pytest.raises(ConfigError) as info:
        Ledger.open(tmp_path / "nothing")
    one_line(info.value)


def test_init_refuses_an_existing_home(sqlite_home: Path) -> None:
    with pytest.raises(ConfigError):
        Ledger.init(sqlite_home, origin=ORIGIN)
    with Ledger.open(sqlite_home) as led:
        assert led.store.size() == 1


# -- the log key ----------------------------------------------------------------


def test_a_missing_key_file(sqlite_home: Path) -> None:
    (sqlite_home / "keys" / "log.key").unlink()
    with pytest.raises(ConfigError) as info:
        Ledger.open(sqlite_home)
    assert "log.key" in one_line(info.value)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        None,  # a valid PEM key of the wrong type
    ],
)
def test_a_corrupt_key_file(sqlite_home: Path, content: bytes | None) -> None:
    key = sqlite_home / "keys" / "log.key"
    if content is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    key.write_bytes(content)
    key.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        Ledger.open(sqlite_home)
    assert "log.key" in one_line(info.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_readable_by_others(sqlite_home: Path, mode: int) -> None:
    key = sqlite_home / "keys" / "log.key"
    key.chmod(mode)
    with pytest.raises(ConfigError) as info:
        Ledger.open(sqlite_home)
    assert f"{mode:o}" in one_line(info.value)


def test_a_new_key_file_is_private(sqlite_home: Path) -> None:
    key = sqlite_home / "keys" / "log.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert os.access(key, os.R_OK)


def test_every_error_is_a_ledger_error() -> None:
    for cls in (ConfigError, InvalidInput, StorageError, TooLarge):
        assert issubclass(cls, LedgerError)
