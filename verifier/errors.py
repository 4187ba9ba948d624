"""Exception tree of the verifier: every failure is an :class:`Error`."""

from __future__ import annotations

__all__ = ["Error", "MalformedError", "VerificationError"]


class Error(Exception):
    """Root of every error raised by :mod:`verifier`."""


class MalformedError(Error):
    """The input could not be parsed: wrong encoding, length or layout."""


class VerificationError(Error):
    """The input parsed but a check failed: a hash, proof or signature is wrong."""
