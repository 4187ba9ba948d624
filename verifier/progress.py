"""Progress bars on long command-line work: on stderr, and only on a terminal.

A bar shows the count done, the rate and an estimate of the time left
(tqdm). It is drawn only when stderr is a terminal, so piped or logged
output never holds bar text, and never on stdout, which carries the
command's results. ``enabled=False`` (the commands' ``--no-progress``) turns
it off on a terminal too. Used by ``evidence-verify log`` and by the
``evidence-ledger`` commands that can run for long.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any

__all__ = ["Progress", "progress"]


class Progress:
    """A bar, or nothing: ``update``/``to`` cost almost nothing when it is off."""

    def __init__(self, bar: Any | None) -> None:
        self._bar = bar

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        if self._bar is not None:
            self._bar.update(n)

    def to(self, done: int, total: int | None = None) -> None:
        """``done`` units done so far (of ``total``, when it becomes known)."""
        bar = self._bar
        if bar is None:
            return
        if total is not None and bar.total != total:
            bar.total = total
        if done > bar.n:
            bar.update(done - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def progress(
    total: int | None,
    what: str,
    *,
    unit: str = "entries",
    enabled: bool | None = None,
    byte_units: bool = False,
) -> Progress:
    """A bar counting ``unit`` towards ``total`` (None: unknown yet), labelled ``what``.

    ``enabled`` None means: when stderr is a terminal.
    """
    stream = sys.stderr
    if enabled is None:
        enabled = stream.isatty()
    if not enabled:
        return Progress(None)
    from tqdm import tqdm

    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError):
        columns = lines = 0
    bar = tqdm(
        total=total,
        desc=what,
        unit="B" if byte_units else f" {unit}",
        unit_scale=byte_units,
        unit_divisor=1024 if byte_units else 1000,
        file=stream,
        mininterval=0.2,
        # A terminal that reports no size (a bare pseudo-terminal) gets 80x24: tqdm
        # would otherwise hide the bar as if it were below the last line.
        ncols=None if columns else 80,
        nrows=None if lines else 24,
        dynamic_ncols=bool(columns),
        leave=True,
    )
    return Progress(bar)
