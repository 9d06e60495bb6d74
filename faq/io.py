"""Bulk import and export of FAQ entries, as CSV or JSON.

Import is all-or-nothing: a file is parsed and every entry validated before anything is
returned. If anything is wrong, ``FaqImportError`` lists every problem with its place in
the file (CSV line, JSON array index and line) and no entry is returned.

CSV format: UTF-8 (a byte-order mark is accepted), a header row, then one row per FAQ entry::

    id,questions,answer,department,language,tags,enabled
    card-lost,I lost my card|My card was stolen,Freeze it in the app...,cards,en,card|security,true

- ``questions``: the question variants, separated by ``|``; a variant cannot contain ``|``
  (whitespace runs and line breaks inside a variant become one space).
- ``tags``: separated by ``|``; may be empty.
- ``answer``: free text; quote it (as any spreadsheet does) if it has commas, quotes or
  line breaks.
- ``department`` (default ``general``), ``language`` (default ``en``), ``tags`` and
  ``enabled`` (``true``/``false``, also ``yes``/``no``/``1``/``0``; default ``true``) may be
  left empty or their columns left out. Columns may come in any order; unknown columns are
  an error, so that a misspelt column is not silently ignored.

Line numbers are physical lines of the file, the header being line 1; a row whose answer
spans several lines is reported at the line it starts on.

JSON format: an array of objects with the fields of ``models.faq.FaqEntry``::

    [{"id": "card-lost", "questions": ["I lost my card"], "answer": "...", "department": "cards",
      "language": "en", "tags": ["card"], "enabled": true}]

Across a file, entry ids must be unique, and one question may not appear in two entries of
the same department and language (the matcher could not tell them apart).

Export writes these same formats; export then import gives back equal entries.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError

from models.faq import LIST_SEPARATOR, FaqEntry, FaqImportProblem

CSV_COLUMNS = ("id", "questions", "answer", "department", "language", "tags", "enabled")
REQUIRED_CSV_COLUMNS = ("id", "questions", "answer")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
_MAX_PROBLEMS_IN_MESSAGE = 50

FileFormat = Literal["csv", "json"]


class FaqImportError(ValueError):
    """The file was rejected; ``problems`` says where and why. Nothing was imported."""

    def __init__(self, problems: Sequence[FaqImportProblem]):
        self.problems = list(problems)
        shown = [str(problem) for problem in self.problems[:_MAX_PROBLEMS_IN_MESSAGE]]
        more = len(self.problems) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more")
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"FAQ file rejected, nothing imported ({len(self.problems)} {noun}):\n" + "\n".join(shown))


class LocatedEntry(NamedTuple):
    """A parsed entry and where it is in the file, to report problems found later there."""

    entry: FaqEntry
    line: int | None
    index: int | None  # position in a JSON array

    def problem(self, message: str, field: str | None = None) -> FaqImportProblem:
        return FaqImportProblem(line=self.line, index=self.index, field=field, message=message)


def parse_entries(data: bytes, file_format: FileFormat) -> list[FaqEntry]:
    """Parse a whole CSV or JSON file; raises FaqImportError listing every problem."""
    return [located.entry for located in parse_entries_located(data, file_format)]


def parse_entries_located(data: bytes, file_format: FileFormat) -> list[LocatedEntry]:
    """Like ``parse_entries``, with each entry's line (and JSON array index)."""
    if file_format == "csv":
        return _parse_csv(data)
    if file_format == "json":
        return _parse_json(data)
    raise ValueError(f"unknown FAQ file format {file_format!r}: use 'csv' or 'json'")


def export_entries(entries: Iterable[FaqEntry], file_format: FileFormat) -> bytes:
    if file_format == "csv":
        return entries_to_csv(entries)
    if file_format == "json":
        return entries_to_json(entries)
    raise ValueError(f"unknown FAQ file format {file_format!r}: use 'csv' or 'json'")


# --- CSV -----------------------------------------------------------------------------------


def entries_to_csv(entries: Iterable[FaqEntry], *, byte_order_mark: bool = False) -> bytes:
    """One row per entry. ``byte_order_mark`` helps spreadsheet programs detect UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow(
            [
                entry.id,
                LIST_SEPARATOR.join(entry.questions),
                entry.answer,
                entry.department,
                entry.language,
                LIST_SEPARATOR.join(entry.tags),
                "true" if entry.enabled else "false",
            ]
        )
    text = out.getvalue()
    return ("\ufeff" + text).encode("utf-8") if byte_order_mark else text.encode("utf-8")


def parse_entries_csv(data: bytes) -> list[FaqEntry]:
    return [located.entry for located in _parse_csv(data)]


def _parse_csv(data: bytes) -> list[LocatedEntry]:
    text = _decode(data)
    problems: list[FaqImportProblem] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise FaqImportError([FaqImportProblem(line=1, message=f"unreadable CSV header: {exc}")]) from None
    if not header or not any(cell.strip() for cell in header):
        raise FaqImportError([FaqImportProblem(line=1, message=f"no header row; expected: {','.join(CSV_COLUMNS)}")])

    columns = [cell.strip().lower() for cell in header]
    for position, name in enumerate(columns):
        if name not in CSV_COLUMNS:
            problems.append(
                FaqImportProblem(
                    line=1, message=f"unknown column {header[position]!r}; known columns: {', '.join(CSV_COLUMNS)}"
                )
            )
        elif columns.index(name) != position:
            problems.append(FaqImportProblem(line=1, message=f"column {name!r} appears twice"))
    for name in REQUIRED_CSV_COLUMNS:
        if name not in columns:
            problems.append(FaqImportProblem(line=1, message=f"missing required column {name!r}"))
    if problems:
        raise FaqImportError(problems)

    parsed: list[tuple[int, FaqEntry]] = []
    start_line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(FaqImportProblem(line=start_line, message=f"unreadable CSV: {exc}"))
            break  # the reader cannot resynchronise after a broken quote
        line = start_line
        start_line = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            problems.append(
                FaqImportProblem(line=line, message=f"expected {len(columns)} cells like the header, found {len(row)}")
            )
            continue
        cells = dict(zip(columns, row, strict=True))
        fields, cell_problems = _fields_from_cells(cells)
        if cell_problems:
            problems.extend(FaqImportProblem(line=line, field=field, message=msg) for field, msg in cell_problems)
            continue
        entry = _validate(fields, problems, line=line, index=None)
        if entry is not None:
            parsed.append((line, entry))

    if not parsed and not problems:
        problems.append(FaqImportProblem(line=None, message="the file has a header but no entries"))
    problems.extend(_cross_entry_problems(parsed, by="line"))
    if problems:
        raise FaqImportError(problems)
    return [LocatedEntry(entry, line, None) for line, entry in parsed]


def _fields_from_cells(cells: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    fields: dict[str, Any] = {
        "id": cells["id"].strip(),
        "questions": _split_list(cells["questions"]),
        "answer": cells["answer"],
    }
    for name in ("department", "language"):
        value = cells.get(name, "").strip()
        if value:
            fields[name] = value
    fields["tags"] = _split_list(cells.get("tags", ""))
    enabled = cells.get("enabled", "").strip().lower()
    if enabled in _TRUE or enabled == "":
        fields["enabled"] = True
    elif enabled in _FALSE:
        fields["enabled"] = False
    else:
        problems.append(("enabled", f"{cells['enabled']!r} is not true or false"))
    return fields, problems


def _split_list(cell: str) -> list[str]:
    if not cell.strip():
        return []
    return [part.strip() for part in cell.split(LIST_SEPARATOR)]


# --- JSON ----------------------------------------------------------------------------------


def entries_to_json(entries: Iterable[FaqEntry]) -> bytes:
    """A JSON array, one entry per line, so that diffs of exported files stay readable."""
    rows = [json.dumps(entry.model_dump(mode="json"), ensure_ascii=False) for entry in entries]
    if not rows:
        return b"[]\n"
    return ("[\n" + ",\n".join(rows) + "\n]\n").encode("utf-8")


def parse_entries_json(data: bytes) -> list[FaqEntry]:
    return [located.entry for located in _parse_json(data)]


def _parse_json(data: bytes) -> list[LocatedEntry]:
    text = _decode(data)
    try:
        items = _json_array_items(text)
    except json.JSONDecodeError as exc:
        raise FaqImportError([FaqImportProblem(line=exc.lineno, message=f"invalid JSON: {exc.msg} (column {exc.colno})")]) from None
    except _NotAnArray as exc:
        raise FaqImportError([FaqImportProblem(line=exc.line, message=str(exc))]) from None

    problems: list[FaqImportProblem] = []
    parsed: list[tuple[int, FaqEntry]] = []
    known = set(FaqEntry.model_fields)
    for index, (line, item) in enumerate(items):
        if not isinstance(item, dict):
            problems.append(FaqImportProblem(index=index, line=line, message=f"expected an object, found {_json_type(item)}"))
            continue
        unknown = sorted(set(item) - known)
        if unknown:
            problems.append(
                FaqImportProblem(
                    index=index,
                    line=line,
                    message=f"unknown field(s) {', '.join(map(repr, unknown))}; known fields: {', '.join(FaqEntry.model_fields)}",
                )
            )
            continue
        entry = _validate(item, problems, line=line, index=index)
        if entry is not None:
            parsed.append((index, entry))
    if not items:
        problems.append(FaqImportProblem(line=1, message="the array is empty: no entries"))
    lines = {index: line for index, (line, _) in enumerate(items)}
    problems.extend(_cross_entry_problems(parsed, by="index", lines=lines))
    if problems:
        raise FaqImportError(problems)
    return [LocatedEntry(entry, lines[index], index) for index, entry in parsed]


class _NotAnArray(ValueError):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def _json_array_items(text: str) -> list[tuple[int, Any]]:
    """Decode a top-level JSON array, remembering the line each element starts on."""
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if position >= len(text) or text[position] != "[":
        if position >= len(text):
            raise _NotAnArray("the file is empty; expected a JSON array of entries", 1)
        value, _ = decoder.raw_decode(text, position)  # raises with a position if not JSON at all
        raise _NotAnArray(f"expected a JSON array of entries, found {_json_type(value)}", _line_of(text, position))
    items: list[tuple[int, Any]] = []
    position = _skip_space(text, position + 1)
    if position < len(text) and text[position] == "]":
        return _expect_end(text, position + 1, items)
    while True:
        value, end = decoder.raw_decode(text, position)
        items.append((_line_of(text, position), value))
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
            continue
        if position < len(text) and text[position] == "]":
            return _expect_end(text, position + 1, items)
        raise json.JSONDecodeError("expected ',' or ']' after an array element", text, position)


def _expect_end(text: str, position: int, items: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    position = _skip_space(text, position)
    if position != len(text):
        raise json.JSONDecodeError("extra data after the array", text, position)
    return items


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )


# --- shared --------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FaqImportError(
            [FaqImportProblem(line=line, message=f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]
        ) from None
    return text.removeprefix("\ufeff")


def _validate(
    fields: dict[str, Any], problems: list[FaqImportProblem], *, line: int | None, index: int | None
) -> FaqEntry | None:
    try:
        return FaqEntry.model_validate(fields)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            problems.append(
                FaqImportProblem(line=line, index=index, field=_field_name(error["loc"]), message=_message(error))
            )
        return None


def _field_name(loc: tuple[int | str, ...]) -> str | None:
    if not loc:
        return None
    name = str(loc[0])
    for part in loc[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        return f"{error['input']!r} has characters that are not allowed ({error['ctx']['pattern']})"
    return message


def _cross_entry_problems(
    parsed: list[tuple[int, FaqEntry]], *, by: Literal["line", "index"], lines: dict[int, int] | None = None
) -> list[FaqImportProblem]:
    """Duplicate ids, and one question in two entries that the matcher could not tell apart."""

    def located(key: int, message: str, field: str | None = None) -> FaqImportProblem:
        if by == "line":
            return FaqImportProblem(line=key, field=field, message=message)
        return FaqImportProblem(index=key, line=(lines or {}).get(key), field=field, message=message)

    def name(key: int) -> str:
        return f"line {key}" if by == "line" else f"entry [{key}]"

    problems: list[FaqImportProblem] = []
    first_by_id: dict[str, int] = {}
    first_by_question: dict[tuple[str, str, str], tuple[int, str]] = {}
    for key, entry in parsed:
        if entry.id in first_by_id:
            problems.append(located(key, f"id {entry.id!r} is already used at {name(first_by_id[entry.id])}", "id"))
        else:
            first_by_id[entry.id] = key
        for question in entry.questions:
            normalised = (entry.department, entry.language, " ".join(question.casefold().split()))
            if normalised in first_by_question:
                other_key, other_id = first_by_question[normalised]
                if other_id != entry.id:
                    problems.append(
                        located(
                            key,
                            f"question {question!r} is also a question of entry {other_id!r} at {name(other_key)}"
                            " in the same department and language",
                            "questions",
                        )
                    )
            else:
                first_by_question[normalised] = (key, entry.id)
    return problems
