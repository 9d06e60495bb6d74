"""The console's message catalogs: extract the texts, merge them into each language's catalog,
and check that none is left untranslated.

    python -m console.messages update   # after changing a text in a template or in console/*.py
    python -m console.messages check    # exits 1 naming any text a catalog lacks

`update` keeps every translation already made, adds new texts with an empty translation
(to be filled in) and drops texts no longer used.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from console.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parent
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("*.py", "python")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}


def extracted() -> Catalog:
    """Every text of the console, as the templates and the Python code spell it."""
    catalog = Catalog(project="ticketflow console", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), METHODS, options_map=OPTIONS, keywords={"_": None, "gettext": None}):
        if filename == "messages.py":
            continue
        catalog.add(message, locations=[(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def catalog_path(folder: str) -> Path:
    return ROOT / "locale" / folder / "LC_MESSAGES" / "console.po"


def update() -> None:
    template = extracted()
    for language in LANGUAGES.values():
        if language.catalog is None:
            continue
        path = catalog_path(language.catalog)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language.catalog)
        else:
            catalog = Catalog(locale=language.catalog, project="ticketflow console")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False  # the header: a fuzzy one is left out of the compiled catalog
        catalog.copyright_holder = "the ticketflow authors"
        catalog.msgid_bugs_address = ""
        catalog.last_translator = "the ticketflow authors"
        catalog.language_team = "Simplified Chinese"
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, sort_output=False, include_lineno=False)
        print(f"{path.relative_to(ROOT.parent)}: {len(catalog)} texts, {len(untranslated(language.code))} "
              "without a translation")


def untranslated(code: str) -> list[str]:
    """The console's texts that the language's catalog does not translate."""
    folder = LANGUAGES[code].catalog
    if folder is None:
        return []
    path = catalog_path(folder)
    translated: dict[str, str] = {}
    if path.exists():
        with path.open("rb") as handle:
            translated = {str(m.id): str(m.string) for m in read_po(handle, locale=folder) if m.id}
    return [str(m.id) for m in extracted() if m.id and not translated.get(str(m.id))]


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        update()
        return 0
    if argv[:1] == ["check"]:
        missing = {code: untranslated(code) for code in LANGUAGES}
        for code, texts in missing.items():
            for text in texts:
                print(f"{code}: no translation for {text!r}")
        return 1 if any(missing.values()) else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
