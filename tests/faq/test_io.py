"""Bulk import and export: lossless round trips, and bad files rejected whole, with places."""

from __future__ import annotations

import json

import pytest

from faq.io import FaqImportError, entries_to_csv, entries_to_json, parse_entries_csv, parse_entries_json
from models.faq import FaqEntry

TRICKY = [
    FaqEntry(
        id="card-lost",
        questions=["I lost my card", 'My "gold" card, the old one, was stolen'],
        answer='Freeze it in the app.\nThen order a new one, "express" if you like | it costs 5 EUR, or less.',
        department="cards",
        language="en-GB",
        tags=["card", "security, urgent"],
    ),
    FaqEntry(
        id="zh.refund",
        questions=["我想申请退款", "退款什么时候到账？"],
        answer="退款将在五个工作日内到账。",
        department="billing",
        language="zh",
    ),
    FaqEntry(id="old-promo", questions=["summer promo"], answer="  Expired.  ", enabled=False),
]


def test_csv_export_then_import_gives_the_same_entries():
    exported = entries_to_csv(TRICKY)

    assert parse_entries_csv(exported) == TRICKY
    assert entries_to_csv(parse_entries_csv(exported)) == exported


def test_json_export_then_import_gives_the_same_entries():
    exported = entries_to_json(TRICKY)

    assert parse_entries_json(exported) == TRICKY
    assert entries_to_json(parse_entries_json(exported)) == exported


def test_csv_from_a_spreadsheet_with_byte_order_mark_and_only_required_columns():
    data = "\ufeffQuestions,ID,Answer\r\nHow do I pay?|Payment options,pay,By card or transfer.\r\n".encode()

    [entry] = parse_entries_csv(data)

    assert entry == FaqEntry(
        id="pay", questions=["How do I pay?", "Payment options"], answer="By card or transfer."
    )
    assert entry.department == "general" and entry.language == "en" and entry.enabled


def test_bad_csv_rows_are_all_reported_with_their_lines_and_nothing_is_imported():
    data = (
        "id,questions,answer,department,language,tags,enabled\n"  # line 1
        "card-lost,I lost my card,Freeze it.,cards,en,,true\n"  # line 2: fine
        'refund,Where is my refund?,"Five days.\n'  # lines 3-4: fine, answer on two lines
        'Sometimes more.",billing,en,,yes\n'
        "empty-question,How do I pay?||Payment,By card.,billing,en,,\n"  # line 5: empty variant
        "promo,summer promo,Expired.,billing,en,,maybe\n"  # line 6: enabled is not a boolean
        "card-lost,I lost my wallet,Call us.,cards,en,,\n"  # line 7: id of line 2 again
        "bad dept,Question?,Answer.,Billing Team,en,,\n"  # line 8: bad id and department
        "short-row,Only two cells\n"  # line 9
    ).encode()

    with pytest.raises(FaqImportError) as caught:
        parse_entries_csv(data)

    problems = caught.value.problems
    assert sorted({p.line for p in problems}) == [5, 6, 7, 8, 9]
    by_line = {p.line: p for p in problems}
    assert by_line[5].field == "questions" and "question 2 is empty" in by_line[5].message
    assert by_line[6].field == "enabled" and "'maybe'" in by_line[6].message
    assert "already used at line 2" in by_line[7].message
    assert {p.field for p in problems if p.line == 8} == {"id", "department"}
    assert "expected 7 cells" in by_line[9].message
    message = str(caught.value)
    assert "nothing imported" in message and "line 6: enabled:" in message


def test_csv_with_an_unknown_or_missing_column_is_rejected_at_the_header():
    data = b"id,question,answer\nx,How?,Like this.\n"

    with pytest.raises(FaqImportError) as caught:
        parse_entries_csv(data)

    messages = [(p.line, p.message) for p in caught.value.problems]
    assert (1, "missing required column 'questions'") in messages
    assert any(line == 1 and "unknown column 'question'" in m for line, m in messages)


def test_csv_with_an_unclosed_quote_is_rejected_at_the_line_it_starts():
    data = b'id,questions,answer\nok,Fine?,Yes.\nbroken,Why?,"never closed\nmore text\n'

    with pytest.raises(FaqImportError) as caught:
        parse_entries_csv(data)

    [problem] = caught.value.problems
    assert problem.line == 3 and "unreadable CSV" in problem.message


def test_one_question_in_two_entries_of_the_same_department_is_rejected():
    data = (
        "id,questions,answer,department\n"
        "a,How do I pay?,By card.,billing\n"
        "b,how do I  PAY?,By transfer.,billing\n"
        "c,How do I pay?,Ask your manager.,hr\n"  # another department may ask the same
    ).encode()

    with pytest.raises(FaqImportError) as caught:
        parse_entries_csv(data)

    [problem] = caught.value.problems
    assert problem.line == 3 and "entry 'a' at line 2" in problem.message


def test_bad_json_entries_are_reported_with_array_index_and_line():
    data = json.dumps(
        [
            {"id": "ok", "questions": ["Fine?"], "answer": "Yes."},
            {"id": "no-answer", "questions": ["Where?"]},
            "not an object",
            {"id": "typo", "questions": ["Q?"], "answer": "A.", "tag": ["x"]},
            {"id": "bad-question", "questions": ["a | b"], "answer": "A."},
        ],
        indent=2,
    ).encode()

    with pytest.raises(FaqImportError) as caught:
        parse_entries_json(data)

    by_index = {p.index: p for p in caught.value.problems}
    assert sorted(by_index) == [1, 2, 3, 4]
    assert by_index[1].field == "answer" and by_index[1].line == 9  # where its "{" is
    assert "expected an object" in by_index[2].message
    assert "unknown field(s) 'tag'" in by_index[3].message
    assert by_index[4].field == "questions" and "'|'" in by_index[4].message
    assert "entry [1], line 9: answer:" in str(caught.value)


def test_json_syntax_error_is_reported_with_its_line():
    data = b'[\n  {"id": "a", "questions": ["Q?"], "answer": "A."},\n  {"id": "b",, }\n]\n'

    with pytest.raises(FaqImportError) as caught:
        parse_entries_json(data)

    [problem] = caught.value.problems
    assert problem.line == 3 and "invalid JSON" in problem.message


def test_json_must_be_an_array_of_entries():
    with pytest.raises(FaqImportError) as caught:
        parse_entries_json(b'{"entries": []}')

    assert "expected a JSON array of entries, found an object" in str(caught.value)


def test_a_file_that_is_not_utf8_is_rejected():
    data = "id,questions,answer\nx,Où est ma carte?,Ici.\n".encode("latin-1")

    with pytest.raises(FaqImportError) as caught:
        parse_entries_csv(data)

    [problem] = caught.value.problems
    assert problem.line == 2 and "UTF-8" in problem.message
