"""Templated answers: checked against the declared fields when saved or imported, rendered
with the ticket's facts, and never rendered with a gap."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from activities.faq import personalised
from faq.io import FaqImportError, parse_entries_csv, parse_entries_json
from models.customer360 import (
    Customer,
    Customer360,
    ExternalTicket,
    ExternalTicketStatus,
    Order,
    OrderStatus,
    Shipment,
    ShipmentStatus,
    SystemGap,
    TrackingEvent,
)
from models.faq import FaqDecision, FaqEntry, FaqEntryUpdate, FaqQuery, FaqResult, FaqTicketQuery
from models.faq_template import FaqAnswerContext, render, template_fields, template_problems

README = Path(__file__).resolve().parents[2] / "README.md"
PARCEL = ("Your parcel is {{ shipment.status }}, expected {{ shipment.eta }}; "
          "last seen {{ shipment.last_scan.location }}")
NOW = datetime(2025, 5, 12, 9, 30, tzinfo=UTC)


def picture(*, shipment: bool = True, **changes) -> Customer360:
    order = Order(id="ORD-1", customer_id="C-1", status=OrderStatus.shipped, placed_at=NOW, currency="EUR",
                  total=Decimal("163.99"), tracking_number="TRK-1", carrier="Sandbox Express")
    parcel = Shipment(tracking_number="TRK-1", carrier="Sandbox Express", status=ShipmentStatus.in_transit,
                      estimated_delivery=datetime(2025, 5, 14, 18, tzinfo=UTC), delay_hours=30,
                      events=[TrackingEvent(time=NOW, location="Berlin delivery station", description="Arrived"),
                              TrackingEvent(time=datetime(2025, 5, 10, tzinfo=UTC), location="Leipzig hub",
                                            description="Sorted")])
    fields = dict(customer_id="C-1", customer=Customer(id="C-1", name="Mia Keller", email="mia@example.com"),
                  orders=[order], shipments=[parcel] if shipment else [],
                  external_tickets=[ExternalTicket(id="HD-1", customer_id="C-1", subject="Mug",
                                                   status=ExternalTicketStatus.solved, created_at=NOW)])
    return Customer360(**{**fields, **changes})


def entry(answer: str) -> FaqEntry:
    return FaqEntry(id="track", questions=["Where is my parcel?"], answer=answer)


# --- rendering ---------------------------------------------------------------------------------


def test_a_template_is_rendered_with_the_parcels_real_status_and_its_latest_scan():
    rendered = render(PARCEL, FaqAnswerContext.from_customer360(picture(), "ORD-1"))

    assert rendered.text == "Your parcel is in transit, expected 14 May 2025; last seen Berlin delivery station"


def test_times_order_and_customer_fields_read_as_a_customer_would_read_them():
    answer = ("{{ customer.name }}: {{ order.id }} of {{ order.placed_on }} is {{ order.status }} "
              "({{ order.total }} {{ order.currency }}), {{ shipment.delay_days }} days late, "
              "scanned {{ shipment.last_scan.time }}; {{ customer.earlier_tickets }} earlier tickets")

    text = render(answer, FaqAnswerContext.from_customer360(picture())).text

    assert text == ("Mia Keller: ORD-1 of 12 May 2025 is shipped (163.99 EUR), 2 days late, "
                    "scanned 12 May 2025, 09:30 UTC; 1 earlier tickets")


def test_an_unknown_shipment_leaves_the_template_unrendered_and_names_what_is_missing():
    rendered = render(PARCEL, FaqAnswerContext.from_customer360(picture(shipment=False), "ORD-1"))

    assert rendered.text is None
    assert rendered.missing_fields == ["shipment.status", "shipment.eta", "shipment.last_scan.location"]
    assert rendered.reason == ("needs shipment.status, shipment.eta and shipment.last_scan.location, "
                               "which this ticket does not have")


def test_a_parcel_without_an_estimate_lacks_only_the_eta():
    parcel = picture().shipments[0].model_copy(update={"estimated_delivery": None})

    rendered = render(PARCEL, FaqAnswerContext.from_customer360(picture(shipments=[parcel])))

    assert rendered.reason == "needs shipment.eta, which this ticket does not have"


def test_an_order_the_erp_does_not_list_has_no_order_fields():
    context = FaqAnswerContext.from_customer360(picture(), "ORD-OTHER")

    assert render("{{ order.status }}", context).missing_fields == ["order.status"]


def test_a_parcel_listed_under_a_typed_order_id_the_erp_could_not_confirm_is_not_told():
    erp_down = picture(orders=[], customer=None, gaps=[SystemGap(system="erp", reason="connection refused")])

    context = FaqAnswerContext.from_customer360(erp_down, "ORD-1")

    assert erp_down.shipments and context.order is None and context.shipment is None


def test_a_status_the_carrier_cannot_name_counts_as_missing_not_as_unknown():
    parcel = picture().shipments[0].model_copy(update={"status": ShipmentStatus.unknown})

    assert render(PARCEL, FaqAnswerContext.from_customer360(picture(shipments=[parcel]))).missing_fields == [
        "shipment.status"]


def test_earlier_tickets_are_missing_when_the_helpdesk_could_not_be_asked_not_zero():
    down = picture(external_tickets=[], gaps=[SystemGap(system="helpdesk", reason="connection refused")])

    assert render("{{ customer.earlier_tickets }}", FaqAnswerContext.from_customer360(down)).text is None


def test_a_ticket_that_gathered_nothing_renders_no_template():
    assert render(PARCEL, None).missing_fields == ["shipment.status", "shipment.eta", "shipment.last_scan.location"]


def test_the_readme_lists_exactly_the_fields_a_template_may_use():
    rows = re.findall(r"^\| `(\w+)\.` \| (.+) \|$", README.read_text(), re.MULTILINE)

    listed = [f"{group}.{name}" for group, names in rows for name in re.findall(r"`([\w.]+)`", names)]

    assert listed == template_fields()


# --- checking when saved -----------------------------------------------------------------------


def test_conditions_and_the_allowed_filters_may_be_used():
    answer = ("{% if shipment.delay_days > 0 %}Sorry, it is {{ shipment.delay_days }} days late. "
              "{% else %}On time. {% endif %}{{ shipment.carrier | upper }}")

    assert template_problems(answer) == []
    assert render(answer, FaqAnswerContext.from_customer360(picture())).text == \
        "Sorry, it is 2 days late. SANDBOX EXPRESS"


def test_every_declared_field_may_be_used_and_a_plain_answer_is_not_a_template():
    answer = " ".join(f"{{{{ {field} }}}}" for field in template_fields())

    assert template_problems(answer) == []
    assert entry("Prices in {curly} braces are plain text.").answer == "Prices in {curly} braces are plain text."


@pytest.mark.parametrize(("answer", "problem"), [
    ("Hello\n{{ shipment.colour }}", "line 2: shipment.colour is not a field a template may use"),
    ("{{ parcel.status }}", "line 1: parcel is not a field a template may use; known here: order, shipment, customer"),
    ("{{ shipment }}", "line 1: shipment is a group of fields; name one of: shipment.tracking_number"),
    ("{{ order.id.upper() }}", "line 1: order.id is a value, it has no field 'upper'"),
    ("a\nb\n{{ order.status ", "line 3: unexpected end of template"),
    ("{{ order.id | shout }}", "line 1: filter 'shout' is not allowed; use one of upper, lower"),
    ("{{ order.id | center(1000000000) }}", "line 1: filter 'center' is not allowed"),
    ("{% for o in 'xxxx' %}.{% endfor %}", "line 1: for is not allowed in an answer template"),
    ("{{ 'a' * 1000000000 }}", "line 1: mul is not allowed in an answer template"),
    ("{% set eta = 'soon' %}{{ eta }}", "line 1: assign is not allowed in an answer template"),
])
def test_a_bad_template_is_refused_with_its_line_and_what_to_fix(answer: str, problem: str):
    with pytest.raises(ValidationError) as refused:
        entry(answer)

    [error] = refused.value.errors()
    assert error["loc"] == ("answer",) and problem in error["msg"]


def test_an_update_checks_the_template_like_a_new_entry():
    with pytest.raises(ValidationError, match="shipment.colour is not a field"):
        FaqEntryUpdate(questions=["Where is my parcel?"], answer="{{ shipment.colour }}")


def test_an_import_with_one_bad_template_is_rejected_whole_naming_its_line():
    good = {"id": "a", "questions": ["Where is my parcel?"], "answer": PARCEL}
    bad = {"id": "b", "questions": ["Has it shipped?"], "answer": "{{ order.state }}"}
    data = ("[\n" + json.dumps(good) + ",\n" + json.dumps(bad) + "\n]").encode()

    with pytest.raises(FaqImportError) as rejected:
        parse_entries_json(data)

    [problem] = rejected.value.problems
    assert (problem.index, problem.line, problem.field) == (1, 3, "answer")
    assert "order.state is not a field a template may use" in problem.message


def test_a_csv_import_reports_a_bad_template_at_its_row():
    data = b'id,questions,answer\nok,Where is it?,Plain answer.\nbad,Has it shipped?,"{{ order.state }}"\n'

    with pytest.raises(FaqImportError) as rejected:
        parse_entries_csv(data)

    assert [(p.line, p.field) for p in rejected.value.problems] == [(3, "answer")]


def test_a_plain_entry_keeps_its_serialised_form_so_the_index_version_of_existing_content_stays():
    plain = FaqEntry(id="x", questions=["Q?"], answer="A.")

    assert plain.model_dump(mode="json", exclude_defaults=True) == {"id": "x", "questions": ["Q?"], "answer": "A."}


# --- the activity's decision -------------------------------------------------------------------


def confident(answer: str) -> FaqResult:
    return FaqResult(index_version="v1", decision=FaqDecision.answer, answer=answer, confidence=0.97, threshold=0.8)


def test_a_confident_templated_answer_goes_out_rendered():
    query = FaqTicketQuery(text="Where is my parcel?", context=FaqAnswerContext.from_customer360(picture()))

    result = personalised(confident(PARCEL), query)

    assert result.decision == FaqDecision.answer and result.answer.startswith("Your parcel is in transit")


def test_a_confident_templated_answer_without_the_facts_escalates_with_the_template_as_suggestion():
    query = FaqTicketQuery(text="Where is my parcel?", context=FaqAnswerContext.from_customer360(picture(shipment=False)))

    result = personalised(confident(PARCEL), query)

    assert result.decision == FaqDecision.escalate and result.answer == PARCEL
    assert result.missing_fields == ["shipment.status", "shipment.eta", "shipment.last_scan.location"]
    assert result.escalation_reason.startswith("needs shipment.status")


def test_a_question_asked_without_a_ticket_cannot_be_answered_with_a_template():
    result = personalised(confident(PARCEL), FaqQuery(text="Where is my parcel?"))

    assert result.decision == FaqDecision.escalate and result.missing_fields


def test_a_plain_answer_is_passed_on_untouched():
    result = confident("Orders arrive in 2-4 days.")

    assert personalised(result, FaqTicketQuery(text="When?")) == result


def test_a_date_in_the_context_is_typed_not_a_string():
    context = FaqAnswerContext.from_customer360(picture())

    assert context.shipment.eta == date(2025, 5, 14) and context.shipment.last_scan.location == "Berlin delivery station"
