"""The console's languages: English (the message ids themselves) and Simplified Chinese.

Every text a person reads in the console is a message in a gettext catalog
(``console/locale/<lang>/LC_MESSAGES/console.po``), extracted from the templates and this
package with ``pybabel extract -F babel.cfg`` (``make messages``). The catalogs are read as
text when the process starts, so no compiled ``.mo`` file is kept beside them.

A person's language is the one they picked with the switch (the ``tf_lang`` cookie), else
the best of their browser's ``Accept-Language`` that the console speaks, else English.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

COOKIE = "tf_lang"
DEFAULT = "en"


@dataclass(frozen=True)
class Language:
    code: str  # what the switch and the cookie carry, and <html lang>
    catalog: str | None  # folder under console/locale; None: the message ids are the text
    name: str  # in its own language, for the switch


LANGUAGES = {lang.code: lang for lang in (
    Language("en", None, "English"),
    Language("zh-Hans", "zh_Hans", "简体中文"),
)}


@cache
def translations(code: str) -> gettext.NullTranslations:
    """The catalog of a language, compiled in memory from its .po file."""
    catalog_dir = LANGUAGES[code].catalog
    if catalog_dir is None:
        return gettext.NullTranslations()
    po = files("console") / "locale" / catalog_dir / "LC_MESSAGES" / "console.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=catalog_dir)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _match(tag: str) -> str | None:
    tag = tag.strip().lower().replace("_", "-")
    if not tag:
        return None
    if tag == "*" or tag.split("-")[0] == "en":
        return "en"
    # Every Chinese variant reads the Simplified catalog: it is the only Chinese one, and
    # closer to a Traditional reader than English is.
    if tag.split("-")[0] == "zh":
        return "zh-Hans"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The console language a browser prefers most, by the q-values of its header."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        code = _match(tag)
        if code is not None and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else None


def choose(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    return from_accept_language(accept_language) or DEFAULT
