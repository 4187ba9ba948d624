"""Streaming multipart/form-data uploads into the blob store.

The request body is parsed as it arrives (``python_multipart``): file parts go
straight into blob writers, hashed with SHA-256 and SM3 on the way, so memory
stays constant for any size. The size limits (of the whole upload, and of
each part of a field: :class:`FilePart`) are enforced on the bytes actually
received, as they arrive, whatever Content-Length claims. A body must end
with its closing delimiter (RFC 2046 §5.1.1): one cut short, even exactly
between two parts, is refused (400), so a truncated file never becomes
evidence. Once the whole request has been read every file is hashed and
staged, not yet published: the caller publishes the upload's writers
(:meth:`Upload.blob_writers`) when the deposit is accepted, or aborts it. A client
that disconnects, a limit exceeded, a truncated body or a deposit refused
leaves no blob and no staged data behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect

from ledger.blobs import BlobInfo, BlobStore, BlobWriter
from ledger.errors import TooLarge, os_errors
from ledger.offload import Overlap, in_thread

__all__ = ["FilePart", "TempSink", "Upload", "UploadedFile", "read_multipart", "read_upload"]


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file field of a multipart body: at most ``count`` parts, each at most
    ``size`` bytes (refused with 413 as soon as a part passes it)."""

    count: int
    size: int


FILE_FIELDS = ("file", "files")
TEXT_FIELDS = {"title": 1000, "description": 10000}
MAX_FILES = 64
# Deposited files up to this size are kept inline: stored with their event in
# the database (one transaction, no file creation or extra fsync).
INLINE_MAX = 64 * 1024
_FEED = 256 * 1024  # bytes gathered before a hop to the parsing thread


class Sink(Protocol):
    """Where one file part goes while it streams in."""

    def write(self, chunk: bytes) -> None: ...
    def abort(self) -> None: ...


@dataclass(slots=True)
class UploadedFile:
    field: str
    file_name: str
    media_type: str | None
    writer: Any
    info: BlobInfo | None = None
    path: Path | None = None


@dataclass(slots=True)
class Upload:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def blob_writers(self) -> list[BlobWriter]:
        """The blob writers of the file parts, in order, for the caller to publish."""
        return [f.writer for f in self.files if isinstance(f.writer, BlobWriter)]

    def abort(self) -> None:
        """Discard every file that was not committed."""
        for f in self.files:
            f.writer.abort()
            if f.path is not None:
                f.path.unlink(missing_ok=True)

    def of(self, field: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field == field]


def _spooling(what: str) -> contextlib.AbstractContextManager[None]:
    """A temporary file's operating system errors as ledger errors
    (:func:`ledger.errors.os_errors`): 507 for a full disk, 503 otherwise."""
    return os_errors("upload", what, "nothing was kept")


class TempSink:
    """A file part spooled to a private temporary file (for verification).

    A full disk, while writing or closing, raises :class:`StorageFull`; the
    caller's :meth:`abort` (every error path of :func:`read_multipart` and of
    the routes calls it) then removes the file.
    """

    def __init__(self, directory: Path | None = None) -> None:
        with _spooling("create a temporary file"):
            fd, name = tempfile.mkstemp(prefix="verify-", dir=directory)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        with _spooling("write the upload"):
            self._file.write(chunk)

    def commit(self) -> Path:
        with _spooling("write the upload"):
            self._file.close()
        return self.path

    def abort(self) -> None:
        # Closing flushes what is buffered, which fails again on a full disk:
        # the bytes are being discarded anyway, and the file is closed regardless.
        with contextlib.suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)


class _Parser:
    """Callbacks for one multipart body."""

    def __init__(
        self,
        make_sink: Callable[[], Any],
        limit: int,
        file_fields: dict[str, FilePart],
        text_fields: dict[str, int],
    ) -> None:
        self.make_sink = make_sink
        self.limit = limit
        self.file_fields = file_fields
        self.text_fields = text_fields
        self.upload = Upload()
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._text: bytearray | None = None
        self._name = ""
        self._current: UploadedFile | None = None
        self._part_size = 0
        self.total = 0

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise HTTPException(400, "multipart: each part needs Content-Disposition: form-data")
        name = params[b"name"].decode("utf-8", "replace")
        self._name = name
        if name in self.file_fields:
            if len(self.upload.of(name)) >= self.file_fields[name].count:
                limit = self.file_fields[name].count
                raise HTTPException(400, f"multipart: at most {limit} {name!r} parts")
            raw_name = params.get(b"filename", b"")
            file_name = raw_name.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
            ctype = self._headers.get(b"content-type")
            media = ctype.decode("latin-1").strip()[:255] if ctype else None
            self._current = UploadedFile(
                field=name,
                file_name=file_name[:1000] or "upload",
                media_type=media,
                writer=self.make_sink(),
            )
            self.upload.files.append(self._current)
            self._part_size = 0
        elif name in self.text_fields:
            if name in self.upload.fields:
                raise HTTPException(400, f"multipart: field {name!r} given twice")
            self._text = bytearray()
        else:
            raise HTTPException(400, f"multipart: unknown field {name!r}")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        n = end - start
        if self._current is not None:
            self.total += n
            self._part_size += n
            if self.total > self.limit:
                raise TooLarge(f"upload: larger than the limit of {self.limit} bytes")
            part = self.file_fields[self._name].size
            if self._part_size > part:
                raise TooLarge(
                    f"upload: part {self._name!r} is larger than its limit of {part} bytes"
                )
            # A view, not a copy, of the immutable block being parsed (the
            # parser's own buffers, which it reuses, are copied).
            view = memoryview(data)[start:end] if isinstance(data, bytes) else data[start:end]
            self._current.writer.write(view)
        elif self._text is not None:
            self._text += data[start:end]
            if len(self._text) > 4 * self.text_fields[self._name]:
                raise HTTPException(400, f"multipart: field {self._name!r} is too long")

    def on_part_end(self) -> None:
        if self._text is not None:
            try:
                value = self._text.decode("utf-8")
            except UnicodeDecodeError:
                raise HTTPException(400, f"multipart: field {self._name!r} is not UTF-8") from None
            if len(value) > self.text_fields[self._name]:
                raise HTTPException(400, f"multipart: field {self._name!r} is too long")
            self.upload.fields[self._name] = value
        self._text = None
        self._current = None


async def read_upload(request: Request, blobs: BlobStore, limit: int) -> Upload:
    """Parse a deposit upload; on success every file is hashed and staged
    (``info`` set), for the caller to publish (:meth:`~Upload.blob_writers`)
    or :meth:`~Upload.abort`."""
    upload = await read_multipart(
        request,
        lambda: blobs.writer(inline_max=INLINE_MAX),
        limit,
        dict.fromkeys(FILE_FIELDS, FilePart(MAX_FILES, limit)),
        TEXT_FIELDS,
        finish=_finish_blobs,
    )
    if not upload.files:
        raise HTTPException(400, "multipart: no file part (field 'file')")
    return upload


def _finish_blobs(upload: Upload) -> None:
    for f in upload.files:
        f.info = f.writer.finish()


async def read_multipart(
    request: Request,
    make_sink: Callable[[], Any],
    limit: int,
    file_fields: dict[str, FilePart],
    text_fields: dict[str, int],
    finish: Callable[[Upload], None] | None = None,
) -> Upload:
    """Stream a multipart body into sinks; text fields are collected (bounded).

    ``finish`` runs on the parsing thread once the body is complete (committing
    the sinks, say), so a small upload costs one hop off the event loop.
    """
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise HTTPException(415, "expected multipart/form-data with a boundary")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise TooLarge(f"upload: larger than the limit of {limit} bytes")
    cb = _Parser(make_sink, limit, file_fields, text_fields)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": cb.on_part_begin,
            "on_header_field": cb.on_header_field,
            "on_header_value": cb.on_header_value,
            "on_header_end": cb.on_header_end,
            "on_headers_finished": cb.on_headers_finished,
            "on_part_data": cb.on_part_data,
            "on_part_end": cb.on_part_end,
        },
    )

    def last(block: bytes) -> None:
        if block:
            parser.write(block)
        parser.finalize()
        if parser.state != MultipartState.END:
            raise HTTPException(400, "multipart: the body ends before its closing boundary")
        if finish is not None:
            finish(cb.upload)

    pending: list[bytes] = []
    size = 0
    try:
        # The next block is received while the thread parses, hashes and
        # writes this one: the upload goes at the slower of the two, not their sum.
        async with Overlap() as feed:
            async for chunk in request.stream():
                pending.append(chunk)
                size += len(chunk)
                if size >= _FEED:
                    block, pending, size = b"".join(pending), [], 0
                    await feed.submit(parser.write, block)
        await in_thread(last, b"".join(pending))
    except ClientDisconnect:
        cb.upload.abort()
        raise HTTPException(400, "upload: the client disconnected") from None
    except MultipartParseError as e:
        cb.upload.abort()
        raise HTTPException(400, f"multipart: malformed body ({e})") from None
    except BaseException:
        cb.upload.abort()
        raise
    return cb.upload
