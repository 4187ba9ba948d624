"""Message catalogues of the web console: extract, update, check.

``python -m api.web.catalogue update`` extracts every translatable string
from the templates (``{{ _("...") }}``, ``{% trans %}``) and the page modules
(``_t(request, "...")``, ``N_("...")``) and merges them into
``locale/<lang>/LC_MESSAGES/messages.po``; new strings arrive untranslated.
``python -m api.web.catalogue check`` exits 1 when a catalogue is out of date
or a Chinese translation is missing or fuzzy (the tests run it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from api.web.i18n import LOCALE_DIR, LOCALES

__all__ = ["check", "extract", "main", "update"]

_ROOT = Path(__file__).parent
_METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
_OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_t": (2,), "N_": None}
_COMPLETE = ("zh",)  # languages that must translate every string (en is the source)


def extract() -> Catalog:
    """Every translatable string of the console, with where it is used."""
    catalog = Catalog(project="evidence-ledger web console", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        _ROOT,
        method_map=_METHODS,
        options_map=_OPTIONS,
        keywords=_KEYWORDS,
        comment_tags=("Translators:",),
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


def _read(lang: str) -> Catalog:
    path = _path(lang)
    if not path.exists():
        return Catalog(
            locale=lang,
            domain="messages",
            project="evidence-ledger web console",
            version="0.1.0",
            copyright_holder="evidence-ledger contributors",
            msgid_bugs_address="",
            last_translator="evidence-ledger contributors",
            language_team=lang,
            fuzzy=False,
        )
    with path.open("rb") as f:
        return read_po(f, locale=lang)


def update() -> None:
    """Merge the extracted strings into every catalogue (obsolete ones dropped)."""
    template = extract()
    for lang in LOCALES:
        catalog = _read(lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path = _path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write_po(f, catalog, width=100, omit_header=False, sort_output=True)


def check() -> list[str]:
    """Problems with the catalogues: missing, stale, untranslated or fuzzy strings."""
    problems: list[str] = []
    wanted = {m.id for m in extract() if m.id}
    for lang in LOCALES:
        catalog = _read(lang)
        have = {m.id for m in catalog if m.id}
        for mid in sorted(wanted - have, key=str):
            problems.append(f"{lang}: missing {mid!r} (run python -m api.web.catalogue update)")
        for mid in sorted(have - wanted, key=str):
            problems.append(f"{lang}: unused {mid!r} (run python -m api.web.catalogue update)")
        if lang not in _COMPLETE:
            continue
        for m in catalog:
            if not m.id:
                continue
            if m.fuzzy:
                problems.append(f"{lang}: fuzzy translation of {m.id!r}")
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            if not all(strings):
                problems.append(f"{lang}: no translation of {m.id!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """``update`` or ``check``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["update"]:
        update()
        return 0
    if args == ["check"]:
        found = check()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    print("usage: python -m api.web.catalogue update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
