"""Languages of the web console: negotiation, catalogues, locale-aware formatting.

The locale comes from an explicit choice (``?lang=``, remembered in a cookie),
then that cookie, then the browser's Accept-Language, then Chinese.

Catalogues: ``locale/<lang>/LC_MESSAGES/messages.po`` are the source of truth
and are compiled in memory when the application starts (a few milliseconds),
so no generated ``.mo`` file can go stale or be forgotten at install time;
``python -m api.web.catalogue check`` (run by the tests) fails when a string
of a template or page has no Chinese translation or a catalogue is out of
date. English is the source language: its catalogue only holds the plural
rules and any wording that differs from the message id.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, get_month_names
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

__all__ = [
    "DEFAULT",
    "LOCALES",
    "LOCALE_DIR",
    "N_",
    "Formatter",
    "negotiate",
    "parse_accept_language",
    "translations",
]

LOCALES = ("zh", "en")
DEFAULT = "zh"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

# Times are shown in Beijing time for Chinese pages and in UTC for English
# ones, always with the offset written out; the log itself keeps UTC.
_ZONES: dict[str, tuple[timezone, str]] = {
    "zh": (timezone(timedelta(hours=8)), "UTC+8"),
    "en": (UTC, "UTC"),
}
_BABEL = {"zh": "zh_Hans_CN", "en": "en_GB"}


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue; it is translated where it is shown."""
    return message


def parse_accept_language(header: str) -> list[str]:
    """Supported languages named by an Accept-Language header, best first.

    ``zh``, ``zh-CN``, ``zh-Hans`` ... map to ``zh``; ``en-*`` to ``en``;
    ranges with ``q=0`` and malformed weights are ignored.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        params = params.strip()
        if params:
            name, _, value = params.partition("=")
            if name.strip() != "q":
                continue
            try:
                weight = float(value)
            except ValueError:
                continue
            if not 0 < weight <= 1:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LOCALES:
            ranked.append((-weight, position, primary))
    out: list[str] = []
    for _, _, lang in sorted(ranked):
        if lang not in out:
            out.append(lang)
    return out


def negotiate(explicit: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page language: explicit choice, then cookie, then Accept-Language, then zh."""
    for choice in (explicit, cookie):
        if choice in LOCALES:
            return str(choice)
    if accept_language:
        ranked = parse_accept_language(accept_language)
        if ranked:
            return ranked[0]
    return DEFAULT


def _po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> Translations:
    """The compiled catalogue of ``lang`` (parsed from its ``.po`` once per process)."""
    if lang not in LOCALES:
        raise ValueError(f"i18n: unsupported language {lang!r}")
    with _po_path(lang).open("rb") as f:
        catalog = read_po(f, locale=_BABEL[lang], domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


@cache
def _months(lang: str) -> dict[int, str]:
    return dict(get_month_names("abbreviated", locale=_BABEL[lang]).items())


def _medium(lang: str, d: datetime) -> str:
    """CLDR's medium date-time of ``lang`` (``y年M月d日 HH:mm:ss``, ``d MMM y, HH:mm:ss``),
    written directly: a list page shows many times, and Babel's general
    formatter costs a few hundred microseconds each. A test checks both
    against :func:`babel.dates.format_datetime`."""
    clock = f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    if lang == "zh":
        return f"{d.year}年{d.month}月{d.day}日 {clock}"
    return f"{d.day} {_months(lang)[d.month]} {d.year}, {clock}"


def format_medium(lang: str, when: datetime) -> str:
    """Babel's own medium format of ``when`` in ``lang`` (the reference for tests)."""
    return str(format_datetime(when, format="medium", tzinfo=when.tzinfo, locale=_BABEL[lang]))


@dataclass(frozen=True, slots=True)
class Formatter:
    """Dates, numbers and sizes written the way ``lang`` writes them."""

    lang: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(_BABEL[self.lang])

    def datetime(self, value: str | datetime | None) -> str:
        """A log time (``2026-01-02T03:04:05.123456Z`` or a datetime) in local
        form with its offset, e.g. ``2026年1月2日 11:04:05 (UTC+8)``."""
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
        else:
            when = value
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        zone, label = _ZONES[self.lang]
        return f"{_medium(self.lang, when.astimezone(zone))} ({label})"

    def number(self, value: int | float | None) -> str:
        """A number with the locale's grouping (``1,234,567``)."""
        if value is None:
            return ""
        return format_decimal(value, locale=_BABEL[self.lang])

    def size(self, value: int | None) -> str:
        """A byte count for people: ``1.5 MB`` (decimal units), exact below 1 kB."""
        if value is None:
            return ""
        units = ("B", "kB", "MB", "GB", "TB")
        amount = float(value)
        unit = 0
        while amount >= 1000 and unit < len(units) - 1:
            amount /= 1000
            unit += 1
        shown = format_decimal(round(amount, 1 if unit else 0), locale=_BABEL[self.lang])
        return f"{shown} {units[unit]}"
