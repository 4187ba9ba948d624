"""A minimal Matroska stream writer: the pipe from the recorder to ffmpeg.

ffmpeg must receive every frame with its own time (screencast frames come
when the page changes, not at a fixed rate). Raw frames and image pipes carry
no timestamps; a Matroska stream does, and ffmpeg reads it from a pipe as it
is written. This writes only what that needs (Matroska / EBML, RFC 9559 and
RFC 8794): the EBML header, a Segment of unknown size (a live stream), its
Info (timestamps in milliseconds) and Tracks (one video track, codec
``V_MJPEG``), then one Cluster per frame holding one SimpleBlock, a key
frame, at the frame's time in milliseconds since the first frame.
"""

from __future__ import annotations

from typing import IO

__all__ = ["MjpegStreamWriter"]

_UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def _size(n: int) -> bytes:
    """An EBML variable-size integer (RFC 8794 section 4) of the smallest width."""
    for width in range(1, 9):
        if n < (1 << (7 * width)) - 1:  # all ones is reserved (unknown size)
            return (n | (1 << (7 * width))).to_bytes(width, "big")
    raise ValueError(f"matroska: element of {n} bytes is too large")


def _uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _element(element_id: int, body: bytes) -> bytes:
    return _uint(element_id) + _size(len(body)) + body


class MjpegStreamWriter:
    """Writes JPEG frames with millisecond timestamps as a Matroska stream."""

    def __init__(self, out: IO[bytes], width: int, height: int, app: str) -> None:
        self._out = out
        header = _element(
            0x1A45DFA3,
            _element(0x4286, _uint(1))  # EBMLVersion
            + _element(0x42F7, _uint(1))  # EBMLReadVersion
            + _element(0x42F2, _uint(4))  # EBMLMaxIDLength
            + _element(0x42F3, _uint(8))  # EBMLMaxSizeLength
            + _element(0x4282, b"matroska")  # DocType
            + _element(0x4287, _uint(4))  # DocTypeVersion
            + _element(0x4285, _uint(2)),  # DocTypeReadVersion
        )
        info = _element(
            0x1549A966,
            _element(0x2AD7B1, _uint(1_000_000))  # TimestampScale: 1 ms
            + _element(0x4D80, app.encode())  # MuxingApp
            + _element(0x5741, app.encode()),  # WritingApp
        )
        video = _element(0xB0, _uint(width)) + _element(0xBA, _uint(height))
        track = _element(
            0xAE,  # TrackEntry
            _element(0xD7, _uint(1))  # TrackNumber
            + _element(0x73C5, _uint(1))  # TrackUID
            + _element(0x83, _uint(1))  # TrackType: video
            + _element(0x9C, _uint(0))  # FlagLacing
            + _element(0x86, b"V_MJPEG")  # CodecID
            + _element(0xE0, video),
        )
        tracks = _element(0x1654AE6B, track)
        segment = _uint(0x18538067) + _UNKNOWN_SIZE
        self._out.write(header + segment + info + tracks)
        self._last = -1

    def frame(self, ms: int, jpeg: bytes) -> None:
        """Append one frame at ``ms`` milliseconds (strictly increasing)."""
        if ms <= self._last:
            raise ValueError(f"matroska: frame at {ms} ms is not after {self._last} ms")
        self._last = ms
        # SimpleBlock: track number 1, timestamp relative to the cluster (0), key frame.
        block = _element(0xA3, b"\x81\x00\x00\x80" + jpeg)
        self._out.write(_element(0x1F43B675, _element(0xE7, _uint(ms)) + block))
