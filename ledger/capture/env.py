"""Environment checks recorded in a capture manifest: clock, proxies, versions."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
from typing import Any

from ledger.capture.errors import CaptureFailed

__all__ = ["chromium_version", "clock_check", "proxy_check", "software_versions"]

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
# adjtimex(2) clock states; TIME_ERROR means the kernel clock is not synchronised.
_CLOCK_STATES = {0: "TIME_OK", 1: "TIME_INS", 2: "TIME_DEL", 3: "TIME_OOP", 4: "TIME_WAIT"}
_TIME_ERROR = 5


def clock_check() -> dict[str, Any]:
    """The clock the capture times come from, and whether the kernel says it is synchronised.

    Reads ``adjtimex(2)`` with no modification (modes = 0): its return value
    is the clock state, ``TIME_ERROR`` when no time daemon keeps the clock
    synchronised. Times in the log itself come from the same clock; the
    checkpoints' RFC 3161 tokens are what anchor them to an independent one.
    """
    out: dict[str, Any] = {"source": "system real-time clock (CLOCK_REALTIME), UTC"}
    libc_name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or libc_name is None:
        out["kernel_synchronized"] = None
        out["kernel_state"] = "unknown (not Linux)"
        return out
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError) as e:
        out["kernel_synchronized"] = None
        out["kernel_state"] = f"unknown ({e})"
        return out
    out["kernel_synchronized"] = state != _TIME_ERROR and state >= 0
    out["kernel_state"] = _CLOCK_STATES.get(state, "TIME_ERROR (unsynchronized)")
    return out


def proxy_check() -> dict[str, Any]:
    """Proxies: none is used; proxy variables in the environment are named (and ignored)."""
    present = sorted({k.lower() for k in os.environ if k.lower() in _PROXY_VARS})
    return {
        "used": False,
        "fetcher": "direct TCP connections to the checked addresses; environment proxies ignored",
        "environment_variables_ignored": present,
    }


@functools.lru_cache(maxsize=8)
def chromium_version(executable: str) -> str:
    """``156.0.8078.79`` from ``chromium --version`` (cached per executable)."""
    try:
        proc = subprocess.run(  # noqa: S603 - the operator's configured browser
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CaptureFailed(
            "browser_error",
            f"cannot run {executable} ({e}); install Debian's chromium package",
        ) from e
    m = re.search(r"(\d+\.\d+\.\d+\.\d+)", proc.stdout)
    if proc.returncode != 0 or m is None:
        raise CaptureFailed(
            "browser_error", f"{executable} --version gave no version: {proc.stdout[:100]!r}"
        )
    return m.group(1)


def software_versions() -> dict[str, str]:
    """Versions of the capture software (for the manifest's ``platform``)."""
    out = {
        "python": platform.python_version(),
        "os": platform.platform(),
    }
    for dist in ("evidence-ledger", "playwright", "warcio", "httpcore"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out
