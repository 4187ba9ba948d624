"""Evidence packages (证据包): one zip with everything a court needs offline.

Format ``evidence-package/v1``. Members, in this order, all stored
(uncompressed) with the certificate's issue time as their date:

``README.txt``
    bilingual (中文/English) explanation; its text is generated from the
    certificate by :func:`readme_text`, so it cannot be changed unnoticed;
``certificate.json``
    the certificate's exact canonical bytes;
``proof.txt``
    the inclusion proof in C2SP tlog-proof form (the leaf bytes as ``extra``);
``certificate.pdf``
    the signed PDF rendering of the certificate (packages made before PDF
    certificates existed have none); checked like ``evidence-verify pdf``;
``evidence-records/checkpoint.txt``, ``evidence-records/<n>.ers``
    only when the checkpoint's timestamp was renewed before the package was
    made: the checkpoint body (the archived data object) and one RFC 4998
    EvidenceRecord (DER) per renewed token, numbered from 1
    (:mod:`verifier.ers`); any ERS tool can check a record over that body;
``evidence/<name>``
    the deposited file (absent for hash-only deposits), named by
    :func:`evidence_member_name`; for a web capture, its manifest;
``capture/<path>``
    for a web capture only: every artefact the manifest lists, in its order
    (:mod:`verifier.capture` checks each against the manifest).

The zip itself is written in one canonical layout (:func:`write_package`) and
read by a strict reader (:class:`PackageReader`) that never extracts anything
to disk and refuses, before reading any data: path traversal and other unsafe
names, duplicate names (also ignoring case), compressed members (no zip bomb
can expand), members that overlap, leave gaps or claim more bytes than the
file holds, and any header field that differs from the canonical layout. So
every byte of a package is either checked against the certificate or fixed
by the layout: changing any byte makes verification fail.
"""

from __future__ import annotations

import hashlib
import os
import struct
import unicodedata
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from verifier.capture import (
    ARTEFACT_DIR,
    MAX_ARTEFACTS,
    MAX_MANIFEST_SIZE,
    CaptureManifest,
    manifest_check,
    verify_artefacts,
)
from verifier.certificate import (
    MAX_CERTIFICATE_SIZE,
    Certificate,
    EvidenceFacts,
    LogStatus,
    verify_certificate,
)
from verifier.digest import CHUNK, FileDigest, digest_stream
from verifier.display import escape_text, is_unsafe
from verifier.errors import MalformedError
from verifier.ers import MAX_RECORD_SIZE
from verifier.report import FAILED, PASSED, SKIPPED, Check, Report
from verifier.tlogproof import parse_tlog_proof
from verifier.trust import Trust, parse_utc

__all__ = [
    "PACKAGE_FORMAT",
    "PackageReader",
    "evidence_member_name",
    "readme_text",
    "record_member_name",
    "verify_package",
    "write_package",
]

PACKAGE_FORMAT = "evidence-package/v1"
README = "README.txt"
CERTIFICATE = "certificate.json"
PROOF = "proof.txt"
CERTIFICATE_PDF = "certificate.pdf"
MAX_PDF = 64 << 20
EVIDENCE_DIR = "evidence/"
RECORDS_DIR = "evidence-records/"
RECORDS_DATA = RECORDS_DIR + "checkpoint.txt"
MAX_RECORDS = 16
"""Evidence records in a package: one per token of the checkpoint's token set."""
MAX_MEMBERS = 5 + MAX_ARTEFACTS + 1 + MAX_RECORDS
"""README, certificate, proof, PDF, the evidence file, a capture's artefacts, and
the evidence records with their checkpoint body."""
MAX_README = 64 << 10
MAX_PROOF = 1 << 20
MAX_NAME = 255

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_EOCD64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR = struct.Struct("<IIQI")
_SIG_LOCAL, _SIG_CENTRAL = 0x04034B50, 0x02014B50
_SIG_EOCD, _SIG_EOCD64, _SIG_LOCATOR = 0x06054B50, 0x06064B50, 0x07064B50
_FLAG_UTF8 = 0x0800
_MAX32, _MAX16 = 0xFFFFFFFF, 0xFFFF
_EXTERNAL_ATTR = 0o100644 << 16
_UNIX = 3 << 8
# zip64 is used exactly when a value does not fit; a module constant so tests
# can exercise the zip64 layout without writing 4 GiB.
ZIP64_LIMIT = _MAX32


# -- names ---------------------------------------------------------------------

_UNSAFE_CHARS = set('<>:"|?*\\') | {chr(c) for c in range(32)} | {"\x7f"}
# Characters that look like a path separator.
_SLASHES = set("\u2215\u2044\u29f8\u29f9\uff0f\uff3c")


def evidence_member_name(facts: EvidenceFacts, *, legacy: bool = False) -> str:
    """The package member name of the deposited file: ``evidence/<name>``.

    ``<name>`` is the deposited file name with any directory part removed,
    characters unsafe on common file systems (``<>:"|?*\\``) and characters
    that hide or reorder what a reader sees (controls, C1, bidi overrides and
    isolates, zero-width and other format characters:
    :func:`verifier.display.is_unsafe`) or look like a slash replaced by
    ``_``, at most 200 characters; ``evidence-<first 16 hex of SHA-256>``
    when there is no usable name. So ``invoice\\u202efdp.exe`` is packaged
    as ``invoice_fdp.exe``, never shown as ``invoiceexe.pdf``.

    ``legacy`` gives the name that packages made before this rule used (only
    C0 controls replaced): the verifier accepts either.
    """
    name = (facts.file_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join("_" if _unsafe_in_name(c, legacy) else c for c in name).strip(" .")[:200]
    if not name or len(name.encode("utf-8")) > MAX_NAME - len(EVIDENCE_DIR):
        name = f"evidence-{facts.sha256[:16]}"
    return EVIDENCE_DIR + name


def _unsafe_in_name(c: str, legacy: bool) -> bool:
    if c in _UNSAFE_CHARS:
        return True
    return not legacy and (c in _SLASHES or is_unsafe(c))


def _check_name(name: str) -> None:
    """Refuse names that could escape a directory or confuse an unzip tool."""
    if not name or len(name.encode("utf-8")) > MAX_NAME:
        raise MalformedError(f"zip: member name of {len(name.encode('utf-8'))} bytes")
    if any(c in name for c in "\\\x00") or any(ord(c) < 32 or c == "\x7f" for c in name):
        raise MalformedError(f"zip: unsafe member name {name!r} (backslash or control character)")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise MalformedError(f"zip: unsafe member name {name!r} (absolute path)")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise MalformedError(f"zip: unsafe member name {name!r} (path traversal or empty segment)")


# -- README --------------------------------------------------------------------


def _legacy_line(value: str | None) -> str:
    if value is None:
        return "-"
    return "".join(" " if ord(c) < 32 or c == "\x7f" else c for c in value)


def record_member_name(n: int) -> str:
    """The package member name of the ``n``-th evidence record (from 1)."""
    return f"{RECORDS_DIR}{n}.ers"


def _shown(value: str | None) -> str:
    return "-" if value is None else escape_text(value)


def readme_text(
    cert: Certificate, *, pdf: bool = False, records: int = 0, legacy: bool = False
) -> str:
    """The bilingual README of a package, a pure function of the certificate (and of
    whether the package holds the PDF certificate and how many evidence records).

    Text from the depositor is shown escaped (:func:`verifier.display.escape_text`);
    ``legacy`` gives the text of packages made before that (controls as spaces,
    the legacy member name), which the verifier also accepts.
    """
    _line = _legacy_line if legacy else _shown
    ev = cert.evidence
    cp = cert.checkpoint_body
    has_file = ev.kind != "hash"
    member = evidence_member_name(ev, legacy=legacy) if has_file else None
    contents_zh = "存证证书（certificate.json）、包含证明（proof.txt）"
    contents_en = "the deposit certificate (certificate.json), the inclusion proof (proof.txt)"
    if pdf:
        contents_zh += "、签名的 PDF 证书（certificate.pdf）"
        contents_en += ", the signed PDF certificate (certificate.pdf)"
    if records:
        contents_zh += f"、时间戳续期证据记录（{RECORDS_DIR}，RFC 4998）"
        contents_en += f", the timestamp renewal evidence records ({RECORDS_DIR}, RFC 4998)"
    if member and ev.kind == "capture":
        contents_zh += f"、存证的取证清单（{member}）及清单所列的取证文件（{ARTEFACT_DIR}…）"
        contents_en += (
            f", the deposited capture manifest ({member}) and the files it lists "
            f"({ARTEFACT_DIR}...)"
        )
    elif member:
        contents_zh += f"和存证的原始文件（{member}）"
        contents_en += f" and the deposited file ({member})"
    else:
        contents_zh += "。本次为仅哈希存证，原始文件不在包内"
        contents_en += ". This was a hash-only deposit: the file itself is not included"
    lines = [
        "证据包 / Evidence package (evidence-package/v1)",
        "",
        f"本证据包包含{contents_zh}。",
        f"This package holds {contents_en}.",
        "",
        f"证书编号 / Certificate id: {cert.certificate_id}",
        f"存证编号 / Deposit number: {ev.deposit_no}",
        f"标题 / Title: {_line(ev.title)}",
        f"文件名 / File name: {_line(ev.file_name)}",
        f"大小 / Size: {'-' if ev.size is None else ev.size}",
        f"SHA-256: {ev.sha256}",
        f"SM3: {ev.sm3 or '-'}",
        f"存证时间 / Deposited at: {ev.deposited_at}",
        f"签发人 / Issued by: {_line(cert.issuer_name)}",
        f"签发时间 / Issued at: {cert.issued_at}",
        f"日志 / Log: {cp.origin}, entry {cert.index} of {cp.size}",
        "",
        "如何验证（可离线进行）：",
        "  evidence-verify package <本文件.zip> --trust <信任文件.json>",
        "信任文件须从法院、公证处或知识产权机构获取，切勿使用证据包内或随包提供的密钥。",
        "",
        "How to verify (offline):",
        "  evidence-verify package <this-file.zip> --trust <trust-file.json>",
        "Obtain the trust file from the court, the notary office or the IP office;",
        "never use keys that come in or with this package.",
        "",
        "本说明仅供阅读，验证程序只信任信任文件中列出的密钥。",
        "This README is informative: the verifier trusts only the keys in the trust file.",
    ]
    return "\n".join(lines) + "\n"


# -- canonical zip layout ------------------------------------------------------


def _dos_time(issued_at: str) -> tuple[int, int]:
    t = parse_utc(issued_at, "issued_at")
    return _dos(t)


def _dos(t: datetime) -> tuple[int, int]:
    year = min(max(t.year, 1980), 2107)
    date = ((year - 1980) << 9) | (t.month << 5) | t.day
    time = (t.hour << 11) | (t.minute << 5) | (t.second // 2)
    return time, date


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    size: int
    crc: int
    offset: int
    dos_time: int
    dos_date: int

    @property
    def zip64_size(self) -> bool:
        return self.size >= ZIP64_LIMIT

    @property
    def zip64_offset(self) -> bool:
        return self.offset >= ZIP64_LIMIT

    @property
    def version(self) -> int:
        return 45 if self.zip64_size or self.zip64_offset else 20

    def local_header(self) -> bytes:
        name = self.name.encode("utf-8")
        extra = b""
        size32 = self.size
        if self.zip64_size:
            extra = struct.pack("<HHQQ", 1, 16, self.size, self.size)
            size32 = _MAX32
        head = _LOCAL.pack(
            _SIG_LOCAL,
            self.version,
            _FLAG_UTF8,
            0,
            self.dos_time,
            self.dos_date,
            self.crc,
            size32,
            size32,
            len(name),
            len(extra),
        )
        return head + name + extra

    def central_header(self) -> bytes:
        name = self.name.encode("utf-8")
        fields: list[int] = []
        size32, offset32 = self.size, self.offset
        if self.zip64_size:
            fields += [self.size, self.size]
            size32 = _MAX32
        if self.zip64_offset:
            fields.append(self.offset)
            offset32 = _MAX32
        extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
        head = _CENTRAL.pack(
            _SIG_CENTRAL,
            _UNIX | self.version,
            self.version,
            _FLAG_UTF8,
            0,
            self.dos_time,
            self.dos_date,
            self.crc,
            size32,
            size32,
            len(name),
            len(extra),
            0,
            0,
            0,
            _EXTERNAL_ATTR,
            offset32,
        )
        return head + name + extra


def _end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    out = b""
    if cd_offset >= ZIP64_LIMIT or cd_size >= ZIP64_LIMIT or count >= _MAX16:
        eocd64_offset = cd_offset + cd_size
        out += _EOCD64.pack(_SIG_EOCD64, 44, _UNIX | 45, 45, 0, 0, count, count, cd_size, cd_offset)
        out += _LOCATOR.pack(_SIG_LOCATOR, 0, eocd64_offset, 1)
    # A value held in the zip64 record is replaced by its all-ones sentinel here.
    count16 = _MAX16 if count >= _MAX16 else count
    size32 = _MAX32 if cd_size >= ZIP64_LIMIT else cd_size
    offset32 = _MAX32 if cd_offset >= ZIP64_LIMIT else cd_offset
    out += _EOCD.pack(_SIG_EOCD, 0, 0, count16, count16, size32, offset32, 0)
    return out


def write_package(
    out: BinaryIO,
    cert: Certificate,
    evidence: BinaryIO | None = None,
    artefacts: Sequence[BinaryIO] = (),
    *,
    pdf: bytes | None = None,
    include_private: bool = False,
    evidence_records: Sequence[bytes] = (),
) -> None:
    """Write a package for ``cert`` to the seekable ``out``.

    ``pdf`` is the signed PDF certificate, stored as ``certificate.pdf``;
    ``evidence_records`` the RFC 4998 records renewing the checkpoint's
    token(s), stored with the checkpoint body under ``evidence-records/``.

    ``evidence`` is the deposited file (required unless the deposit is
    hash-only); it is streamed, and its size and SHA-256 must equal the
    certificate's or :class:`MalformedError` is raised. For a capture, the
    deposited file is the capture manifest and ``artefacts`` are the files it
    lists, in its order, each checked against the manifest as it is written:
    its public artefacts, or with ``include_private`` all of them (private
    artefacts hold secrets typed during the capture).
    """
    ev = cert.evidence
    if (evidence is None) != (ev.kind == "hash"):
        raise MalformedError(
            "package: a hash-only deposit has no file; any other deposit needs its file"
        )
    dos_time, dos_date = _dos_time(cert.issued_at)
    members: list[_Member] = []
    start = out.tell()

    def add(name: str, data: bytes) -> None:
        m = _Member(name, len(data), zlib.crc32(data), out.tell() - start, dos_time, dos_date)
        out.write(m.local_header())
        out.write(data)
        members.append(m)

    def stream(name: str, size: int, sha256: str, source: BinaryIO) -> bytes:
        """Copy ``source`` as member ``name``; return its first bytes (a manifest's all)."""
        offset = out.tell() - start
        out.write(_Member(name, size, 0, offset, dos_time, dos_date).local_header())
        sha = hashlib.sha256()
        crc = copied = 0
        head = b""
        while chunk := source.read(CHUNK):
            copied += len(chunk)
            if copied > size:
                break
            if len(head) <= MAX_MANIFEST_SIZE:
                head += chunk[: MAX_MANIFEST_SIZE + 1 - len(head)]
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
            out.write(chunk)
        if copied != size or sha.hexdigest() != sha256:
            raise MalformedError(f"package: {name} is not the file its digest names")
        end = out.tell()
        m = _Member(name, size, crc, offset, dos_time, dos_date)
        out.seek(start + offset)
        out.write(m.local_header())  # now with the CRC-32
        out.seek(end)
        members.append(m)
        return head

    if len(evidence_records) > MAX_RECORDS:
        n = len(evidence_records)
        raise MalformedError(f"package: {n} evidence records, limit {MAX_RECORDS}")
    readme = readme_text(cert, pdf=pdf is not None, records=len(evidence_records))
    add(README, readme.encode("utf-8"))
    add(CERTIFICATE, cert.raw)
    add(PROOF, cert.tlog_proof().to_text().encode("utf-8"))
    if pdf is not None:
        add(CERTIFICATE_PDF, pdf)
    if evidence_records:
        add(RECORDS_DATA, cert.checkpoint_note.text.encode("utf-8"))
        for n, record in enumerate(evidence_records, 1):
            add(record_member_name(n), record)
    if evidence is not None:
        if ev.size is None:
            raise MalformedError("package: the certificate does not state the file's size")
        head = stream(evidence_member_name(ev), ev.size, ev.sha256, evidence)
        if ev.kind == "capture":
            manifest = CaptureManifest.from_json(head)
            packaged = manifest.packaged(include_private)
            if len(artefacts) != len(packaged):
                raise MalformedError(
                    f"package: the manifest lists {len(packaged)} artefacts to package, "
                    f"{len(artefacts)} given"
                )
            for a, source in zip(packaged, artefacts, strict=True):
                stream(a.member, a.size, a.sha256, source)
    if artefacts and ev.kind != "capture":
        raise MalformedError("package: only a capture has artefacts")
    cd_offset = out.tell() - start
    central = b"".join(m.central_header() for m in members)
    out.write(central)
    out.write(_end_records(len(members), cd_offset, len(central)))
    out.flush()


# -- strict reader -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackageMember:
    """A member of a package: its name, size, CRC-32 and where its data starts."""

    name: str
    size: int
    crc: int
    data_offset: int
    dos_time: int
    dos_date: int


class PackageReader:
    """Reads a package in the canonical layout; refuses anything else.

    Opening checks the whole structure (see the module docstring) and raises
    :class:`MalformedError` naming the first problem. Member data is read
    from the file by offset; nothing is written to disk.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        try:
            self._f: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise MalformedError(f"package: cannot read {self.path!r}: {e.strerror}") from e
        try:
            self.members = self._parse()
        except BaseException:
            self._f.close()
            raise
        self.by_name = {m.name: m for m in self.members}

    def close(self) -> None:
        """Close the file."""
        self._f.close()

    def __enter__(self) -> PackageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_at(self, offset: int, n: int) -> bytes:
        self._f.seek(offset)
        data = self._f.read(n)
        if len(data) != n:
            raise MalformedError("zip: truncated")
        return data

    def _parse(self) -> list[PackageMember]:
        size = self._f.seek(0, os.SEEK_END)
        if size < _EOCD.size:
            raise MalformedError("zip: not a zip file (too short)")
        # (1) the end-of-central-directory record ends the file (no comment).
        eocd = _EOCD.unpack(self._read_at(size - _EOCD.size, _EOCD.size))
        sig, disk, cd_disk, n_disk, count, cd_size, cd_offset, comment = eocd
        if sig != _SIG_EOCD or comment != 0:
            raise MalformedError(
                "zip: no end-of-central-directory record at the end "
                "(not a zip, or a comment or trailing data)"
            )
        if disk or cd_disk or n_disk != count:
            raise MalformedError("zip: multi-disk archives are not packages")
        end = size - _EOCD.size
        # (2) zip64 end records, exactly when a value does not fit in the classic one.
        if count == _MAX16 or cd_size == _MAX32 or cd_offset == _MAX32:
            if end < _LOCATOR.size + _EOCD64.size:
                raise MalformedError("zip: zip64 locator missing")
            loc = _LOCATOR.unpack(self._read_at(end - _LOCATOR.size, _LOCATOR.size))
            end -= _LOCATOR.size + _EOCD64.size
            if loc[0] != _SIG_LOCATOR or loc[1] != 0 or loc[2] != end or loc[3] != 1:
                raise MalformedError("zip: bad zip64 end-of-central-directory locator")
            rec = _EOCD64.unpack(self._read_at(end, _EOCD64.size))
            if rec[0] != _SIG_EOCD64 or rec[1] != 44 or rec[4] or rec[5] or rec[6] != rec[7]:
                raise MalformedError("zip: bad zip64 end-of-central-directory record")
            count, cd_size, cd_offset = rec[7], rec[8], rec[9]
        if count > MAX_MEMBERS:
            raise MalformedError(f"zip: {count} members; a package has at most {MAX_MEMBERS}")
        if cd_offset + cd_size != end:
            raise MalformedError(
                "zip: the central directory does not end where the end record starts"
            )
        if self._end_records_bytes(count, cd_offset, cd_size) != self._read_at(
            cd_offset + cd_size, size - cd_offset - cd_size
        ):
            raise MalformedError("zip: end-of-central-directory record is not in canonical form")
        # (3) central directory entries: names, methods, sizes.
        cd = self._read_at(cd_offset, cd_size)
        members: list[_Member] = []
        raw: list[bytes] = []
        pos = 0
        seen: set[str] = set()
        for _ in range(count):
            m, end = self._central_entry(cd, pos, cd_offset)
            key = unicodedata.normalize("NFC", m.name).casefold()
            if key in seen:
                raise MalformedError(f"zip: duplicate member name {m.name!r}")
            seen.add(key)
            members.append(m)
            raw.append(cd[pos:end])
            pos = end
        if pos != cd_size:
            raise MalformedError("zip: extra bytes in the central directory")
        # Only once every entry passed the safety checks: the canonical form, so
        # that a foreign zip is refused for its most dangerous defect first.
        for m, actual in zip(members, raw, strict=True):
            if actual != m.central_header():
                raise MalformedError(f"zip: directory entry of {m.name!r} is not in canonical form")
        # (4) members are contiguous from offset 0, in directory order, each
        # behind its canonical local header; the directory follows the last.
        out: list[PackageMember] = []
        expected = 0
        for m in members:
            if m.offset < expected:
                raise MalformedError(f"zip: member {m.name!r} overlaps the one before it")
            if m.offset > expected:
                raise MalformedError(
                    f"zip: {m.offset - expected} unexplained bytes before member {m.name!r}"
                )
            header = m.local_header()
            if self._read_at(m.offset, len(header)) != header:
                raise MalformedError(
                    f"zip: local header of {m.name!r} differs from its directory entry"
                )
            data = m.offset + len(header)
            expected = data + m.size
            out.append(PackageMember(m.name, m.size, m.crc, data, m.dos_time, m.dos_date))
        if expected != cd_offset:
            raise MalformedError("zip: bytes between the last member and the central directory")
        if len({(m.dos_time, m.dos_date) for m in members}) > 1:
            raise MalformedError("zip: members carry different dates")
        return out

    @staticmethod
    def _end_records_bytes(count: int, cd_offset: int, cd_size: int) -> bytes:
        return _end_records(count, cd_offset, cd_size)

    def _central_entry(self, cd: bytes, pos: int, cd_offset: int) -> tuple[_Member, int]:
        if pos + _CENTRAL.size > len(cd):
            raise MalformedError("zip: truncated central directory")
        f = _CENTRAL.unpack_from(cd, pos)
        sig, _made, _need, flags, method, dtime, ddate, crc, csize, usize = f[:10]
        name_len, extra_len, comment_len = f[10:13]
        offset32 = f[16]
        start = pos + _CENTRAL.size
        end = start + name_len + extra_len + comment_len
        if sig != _SIG_CENTRAL or end > len(cd):
            raise MalformedError("zip: bad central directory entry")
        raw_name = cd[start : start + name_len]
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedError(f"zip: member name {raw_name!r} is not UTF-8") from e
        _check_name(name)
        if method != 0:
            raise MalformedError(
                f"zip: member {name!r} is compressed (method {method}); packages store members "
                "uncompressed, so no zip bomb can expand"
            )
        if flags & 0x0001:
            raise MalformedError(f"zip: member {name!r} is encrypted")
        if csize != usize:
            raise MalformedError(f"zip: member {name!r} is stored but its two sizes differ")
        size, offset = usize, offset32
        extra = cd[start + name_len : start + name_len + extra_len]
        if extra:
            size, offset = self._zip64_extra(name, extra, usize, offset32)
        if offset + size > cd_offset:
            raise MalformedError(
                f"zip: member {name!r} claims {size} bytes, more than the file holds"
            )
        return _Member(name, size, crc, offset, dtime, ddate), end

    @staticmethod
    def _zip64_extra(name: str, extra: bytes, usize: int, offset32: int) -> tuple[int, int]:
        if len(extra) < 4:
            raise MalformedError(f"zip: bad extra field of {name!r}")
        tag, n = struct.unpack_from("<HH", extra)
        if tag != 1 or n != len(extra) - 4 or n % 8:
            raise MalformedError(f"zip: unexpected extra field in {name!r}")
        values = list(struct.unpack_from(f"<{n // 8}Q", extra, 4))
        size, offset = usize, offset32
        if usize == _MAX32 and len(values) >= 2:
            size = values.pop(0)
            values.pop(0)
        if offset32 == _MAX32 and values:
            offset = values.pop(0)
        if values:
            raise MalformedError(f"zip: bad zip64 extra field in {name!r}")
        return size, offset

    # -- data ------------------------------------------------------------------
    def read(self, name: str, limit: int) -> bytes:
        """A member's bytes, CRC-checked; refuse members larger than ``limit``."""
        m = self.by_name[name]
        if m.size > limit:
            raise MalformedError(f"package: {name} has {m.size} bytes, more than {limit}")
        data = self._read_at(m.data_offset, m.size)
        if zlib.crc32(data) != m.crc:
            raise MalformedError(f"zip: member {name!r} fails its CRC-32 check")
        return data

    def reader(self, name: str) -> Callable[[int], bytes]:
        """A ``read(n)`` function over a member's data (CRC checked by the caller)."""
        m = self.by_name[name]
        self._f.seek(m.data_offset)
        left = m.size

        def read(n: int) -> bytes:
            nonlocal left
            data = self._f.read(min(n, left))
            left -= len(data)
            if not data and left:
                raise MalformedError("zip: truncated")
            return data

        return read

    def names(self) -> Iterator[str]:
        """Member names in file order."""
        return (m.name for m in self.members)


# -- verification --------------------------------------------------------------


def verify_package(
    path: str | os.PathLike[str],
    trust: Trust,
    *,
    log_status: Callable[[Certificate], LogStatus] | None = None,
    at: datetime | None = None,
) -> Report:
    """Verify an evidence package against the trust file (at time ``at``, default now).

    (1) open the zip strictly (malformed structure raises MalformedError);
    (2) parse ``certificate.json`` (malformed raises);
    (3) the members are exactly the expected ones, dated at the issue time;
    (4) ``proof.txt`` is the certificate's proof in tlog-proof form;
    (5) ``README.txt`` is the standard text for this certificate;
    (6) the certificate checks of :func:`verify_certificate`, with the
        evidence file digested from the package, the package's evidence
        records (and, with ``log_status``, the log view's issuance and
        revocation checks);
    (7) for a capture: the manifest (the deposited file) parses, and every
        artefact it lists is in the package with its size and digests;
    (8) ``certificate.pdf``, when present: the checks of
        :func:`verifier.pdf.pdf_checks` (signature, signer, updates,
        attachments, page) and its attached certificate is this one.
    """
    with PackageReader(path) as pkg:  # (1)
        if CERTIFICATE not in pkg.by_name:
            raise MalformedError("package: no certificate.json")
        cert = Certificate.from_json(pkg.read(CERTIFICATE, MAX_CERTIFICATE_SIZE))  # (2)
        digests: dict[str, FileDigest] = {}
        for m in pkg.members:
            if m.name.startswith((EVIDENCE_DIR, ARTEFACT_DIR)):
                d = digest_stream(pkg.reader(m.name), m.name, crc=True)
                if d.crc32 != m.crc:
                    raise MalformedError(f"zip: member {m.name!r} fails its CRC-32 check")
                digests[m.name] = d
        manifest, capture_checks = _capture(pkg, cert, digests)  # (7)
        checks = [_check_members(pkg, cert, manifest)]  # (3)
        checks.append(_check_proof(pkg, cert))  # (4)
        checks.append(_check_readme(pkg, cert))  # (5)
        files = [d for name, d in digests.items() if name.startswith(EVIDENCE_DIR)]
        log = log_status(cert) if log_status is not None else None
        records = [pkg.read(n, MAX_RECORD_SIZE) for n in _record_names(pkg)]
        checks += verify_certificate(  # (6)
            cert, trust, files, log=log, evidence_records=records, at=at
        )
        checks += capture_checks
        if CERTIFICATE_PDF in pkg.by_name:  # (8)
            from verifier.pdf import pdf_checks

            checks += pdf_checks(pkg.read(CERTIFICATE_PDF, MAX_PDF), trust, cert)
    return Report("package", Path(path).name, tuple(checks), cert.facts())


def _capture(
    pkg: PackageReader, cert: Certificate, digests: Mapping[str, FileDigest]
) -> tuple[CaptureManifest | None, list[Check]]:
    """For a capture: the manifest (once its digest matches the certificate) and
    one check per artefact it lists (:mod:`verifier.capture`)."""
    if cert.evidence.kind != "capture":
        return None, []
    name = _member_name(pkg, cert.evidence)
    d = digests.get(name)
    if d is None or d.sha256 != cert.evidence.sha256:
        why_en = "the package's manifest is missing or not the deposited one"
        why_zh = "证据包中的取证清单缺失或不是存证的清单"
        return None, [
            Check("capture_manifest", SKIPPED, f"not checked: {why_en}", f"无法检查：{why_zh}")
        ]
    try:
        manifest = CaptureManifest.from_json(pkg.read(name, MAX_MANIFEST_SIZE))
    except MalformedError as e:
        return None, [Check("capture_manifest", FAILED, str(e), f"取证清单格式错误（{e}）")]
    return manifest, [manifest_check(manifest), *verify_artefacts(manifest, digests)]


def _member_name(pkg: PackageReader, ev: EvidenceFacts) -> str:
    """The evidence member's expected name: the current rule's, or the legacy
    one when an older package holds that name instead."""
    name = evidence_member_name(ev)
    old = evidence_member_name(ev, legacy=True)
    if old != name and old in pkg.by_name and name not in pkg.by_name:
        return old
    return name


def _fail(key: str, en: str, zh: str) -> Check:
    return Check(key, FAILED, en, zh)


def _record_names(pkg: PackageReader) -> list[str]:
    """The evidence record members present, in the numbered order they must have."""
    names = []
    for n in range(1, MAX_RECORDS + 1):
        if record_member_name(n) not in pkg.by_name:
            break
        names.append(record_member_name(n))
    return names


def _check_members(
    pkg: PackageReader, cert: Certificate, manifest: CaptureManifest | None
) -> Check:
    expected = [README, CERTIFICATE, PROOF]
    if CERTIFICATE_PDF in pkg.by_name:
        expected.append(CERTIFICATE_PDF)
    records = _record_names(pkg)
    if records:
        expected += [RECORDS_DATA, *records]
        if RECORDS_DATA in pkg.by_name and pkg.read(
            RECORDS_DATA, MAX_RECORD_SIZE
        ) != cert.checkpoint_note.text.encode("utf-8"):
            return _fail(
                "package_members",
                f"{RECORDS_DATA} is not the body of the certificate's checkpoint",
                f"{RECORDS_DATA} 不是证书所载检查点的正文",
            )
    if cert.evidence.kind != "hash":
        expected.append(_member_name(pkg, cert.evidence))
    actual = list(pkg.names())
    if manifest is not None:
        expected += manifest.members(present=actual)
    missing = [n for n in expected if n not in actual]
    unexpected = [n for n in actual if n not in expected]
    if cert.evidence.kind == "capture" and manifest is None:
        # Without a trustworthy manifest its artefacts cannot be judged here;
        # the capture_manifest check says why.
        missing = [n for n in missing if not n.startswith(ARTEFACT_DIR)]
        unexpected = [n for n in unexpected if not n.startswith(ARTEFACT_DIR)]
    if missing or unexpected:
        en, zh = [], []
        if missing:
            en.append("missing " + ", ".join(missing))
            zh.append("缺少 " + "、".join(missing))
        if unexpected:
            en.append("unexpected " + ", ".join(unexpected))
            zh.append("多出 " + "、".join(unexpected))
        return _fail("package_members", "; ".join(en), "；".join(zh))
    if [n for n in actual if n in expected] != expected:
        return _fail(
            "package_members", "members are not in the standard order", "成员顺序不符合标准"
        )
    m = pkg.members[0]
    if (m.dos_time, m.dos_date) != _dos_time(cert.issued_at):
        return _fail(
            "package_members",
            "member dates are not the certificate's issue time",
            "成员日期与证书签发时间不符",
        )
    return Check("package_members", PASSED, ", ".join(actual), "、".join(actual))


def _check_proof(pkg: PackageReader, cert: Certificate) -> Check:
    if PROOF not in pkg.by_name:
        return _fail("proof_file", "proof.txt is missing", "缺少 proof.txt")
    data = pkg.read(PROOF, MAX_PROOF)
    try:
        proof = parse_tlog_proof(data)
    except MalformedError as e:
        return _fail("proof_file", f"proof.txt: {e}", f"proof.txt 格式错误（{e}）")
    expected = cert.tlog_proof()
    for field, zh in (
        ("index", "序号"),
        ("hashes", "证明哈希"),
        ("checkpoint", "检查点"),
        ("extra", "叶子"),
    ):
        if getattr(proof, field) != getattr(expected, field):
            return _fail(
                "proof_file",
                f"proof.txt: {field} differs from the certificate's",
                f"proof.txt 的{zh}与证书不一致",
            )
    if data != expected.to_text().encode("utf-8"):
        return _fail("proof_file", "proof.txt is not in canonical form", "proof.txt 不是标准格式")
    return Check(
        "proof_file",
        PASSED,
        f"c2sp.org/tlog-proof@v1, index {proof.index}, {len(proof.hashes)} hashes",
        f"c2sp.org/tlog-proof@v1，序号 {proof.index}，{len(proof.hashes)} 个哈希",
    )


def _check_readme(pkg: PackageReader, cert: Certificate) -> Check:
    if README not in pkg.by_name:
        return _fail("readme", "README.txt is missing", "缺少 README.txt")
    pdf = CERTIFICATE_PDF in pkg.by_name
    n_records = len(_record_names(pkg))
    found = pkg.read(README, MAX_README)
    if found not in (
        readme_text(cert, pdf=pdf, records=n_records).encode("utf-8"),
        readme_text(cert, pdf=pdf, records=n_records, legacy=True).encode("utf-8"),
    ):
        return _fail(
            "readme",
            "README.txt differs from the standard text for this certificate",
            "README.txt 与该证书的标准说明不一致",
        )
    return Check("readme", PASSED, "standard bilingual text", "标准中英文说明")
