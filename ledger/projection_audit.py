"""Step (7) of the audit: every projection row against a replay of the log.

Authentication and access checks read the projection tables (an account's
role and revocation, an evidence row's owner), so a row changed behind the
ledger's back would change who may do what without touching the log. The
audit replays the log into scratch tables (:class:`ProjectionReplay`) and
compares, table by table, both sides streamed in ``idx`` order: (1) a row
of the log's replay missing from the store; (2) a stored row the log does
not produce; (3) a column whose value (or SQL type) differs. The error names
the table, the row's key, the entry that created it, the column, and the
expected and found values, escaped for the terminal.

Both sides are read from one snapshot of the store: entries appended after
the audit read the log are replayed from the same snapshot first, so a live
ledger does not raise false alarms.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import closing
from typing import Any

from ledger.errors import AuditError, StorageError
from ledger.projections import PROJECTIONS, Op, project
from ledger.storage.base import ProjectionView, Store, insert_columns
from ledger.storage.replay import ProjectionReplay
from verifier.display import escape_text
from verifier.errors import Error as VerifierError
from verifier.record import decode_record

__all__ = ["compare_projections"]


def compare_projections(store: Store, replay: ProjectionReplay, audited: int) -> int:
    """Compare every projection table with ``replay`` (filled with the ops of
    entries ``[0, audited)``); return the number of rows compared."""
    try:
        with store.projection_view() as view:
            _catch_up(view, replay, audited)
            count = 0
            for table in PROJECTIONS:
                # Closed before the snapshot ends, also on a failure: a
                # server-side cursor must not outlive its transaction.
                with closing(view.projection_rows(table)) as found:
                    count += _compare(table, replay.rows(table), found)
            return count
    except StorageError as e:
        raise AuditError(f"projections: {e}", getattr(e, "index", None)) from e


def _catch_up(view: ProjectionView, replay: ProjectionReplay, audited: int) -> None:
    """Replay the entries appended since the audit read the log (not audited
    here: the next audit covers them)."""
    size = view.size()
    ops: list[Op] = []
    with closing(view.log_rows(audited, size)) as rows:
        for idx, _type, t, leaf, private in rows:
            try:
                rec = decode_record(leaf)
                ops += project(rec.type, rec.body, json.loads(private), idx, t)
            except (VerifierError, ValueError) as e:
                why = f"appended during the audit, unreadable ({e})"
                raise AuditError(f"entry {idx}: {why}") from e
            if len(ops) >= 10_000:
                replay.apply(ops)
                ops = []
    replay.apply(ops)


def _groups(
    rows: Iterator[tuple[Any, ...]], at: int
) -> Iterator[tuple[Any, list[tuple[Any, ...]]]]:
    for key, group in itertools.groupby(rows, key=lambda r: r[at]):
        yield key, list(group)


def _compare(
    table: str, expected: Iterator[tuple[Any, ...]], found: Iterator[tuple[Any, ...]]
) -> int:
    """Merge both sides by ``idx``; inside one index, match rows by primary key."""
    cols = insert_columns(table)
    at = cols.index("idx")
    exp_groups, got_groups = _groups(expected, at), _groups(found, at)
    exp = next(exp_groups, None)
    got = next(got_groups, None)
    count = 0
    while exp is not None or got is not None:
        if got is not None and (not isinstance(got[0], int) or isinstance(got[0], bool)):
            raise AuditError(f"{table}: a row has idx {_show(got[0])}, not an integer")
        if got is None or (exp is not None and exp[0] < got[0]):
            assert exp is not None
            _diff(table, cols, exp[0], exp[1], [])
            exp = next(exp_groups, None)
        elif exp is None or got[0] < exp[0]:
            _diff(table, cols, got[0], [], got[1])
            got = next(got_groups, None)
        else:
            _diff(table, cols, exp[0], exp[1], got[1])
            count += len(got[1])
            exp = next(exp_groups, None)
            got = next(got_groups, None)
    return count


def _diff(
    table: str,
    cols: tuple[str, ...],
    idx: int,
    expected: list[tuple[Any, ...]],
    found: list[tuple[Any, ...]],
) -> None:
    """Rows of one ``idx``: raise on the first difference."""
    if len(expected) == 1 and len(found) == 1 and expected[0] == found[0]:
        # The common case. Equal tuples hold equal types too: the databases
        # coerce numbers to a column's type, and text never equals bytes.
        return
    key = cols[0]
    exp = {r[0]: r for r in expected}
    got: dict[Any, tuple[Any, ...]] = {}
    for r in found:
        if r[0] in got:
            raise AuditError(f"{table}: {key} {_show(r[0])} is stored twice (entry {idx})", idx)
        got[r[0]] = r
    for k in sorted(exp.keys() | got.keys(), key=repr):
        where = f"{table}: {key} {_show(k)} (entry {idx})"
        if k not in got:
            raise AuditError(f"{where}: missing, the log creates it", idx)
        if k not in exp:
            raise AuditError(f"{where}: stored, but the log does not create it", idx)
        for name, e, f in zip(cols, exp[k], got[k], strict=True):
            if type(e) is not type(f) or e != f:
                raise AuditError(
                    f"{where}: column {name}: expected {_show(e)}, found {_show(f)}", idx
                )


def _show(value: Any) -> str:
    """A value for a one-line message: strings quoted and escaped, bytes in hex."""
    if isinstance(value, str):
        text = escape_text(value)
        return f"'{text[:200]}'" + ("..." if len(text) > 200 else "")
    if isinstance(value, bytes | bytearray | memoryview):
        return f"bytes {bytes(value)[:64].hex()}"
    return repr(value)
