"""The case-type registry: what a case type must declare, and what it may not."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from temporalio import workflow

import worker
from workflows import registry
from workflows.registry import CaseType, CaseTypeError
from workflows.ticket import SUPPORT_TICKET, TicketWorkflow


class ReturnInput(BaseModel):
    order_id: str


@workflow.defn(name="RegistryProbe")
class Probe:
    @workflow.run
    async def run(self, inp: ReturnInput) -> None:
        return None


def case_type(**changes) -> CaseType:  # noqa: ANN003
    fields = dict(name="warranty-claim", title="Warranty claim", description="A broken item.", workflow=Probe,
                  create_model=ReturnInput, input_model=ReturnInput, id_prefix="warranty", default_department="returns",
                  task_outcomes={"approve_return": ("approve", "reject", "ask_customer")})
    return CaseType(**{**fields, **changes})


def test_the_support_ticket_is_registered_and_its_workflow_runs_on_every_worker():
    assert registry.get("support-ticket") is SUPPORT_TICKET
    assert SUPPORT_TICKET.workflow is TicketWorkflow
    assert TicketWorkflow in worker.WORKFLOWS
    assert SUPPORT_TICKET.workflow_id("abc") == "ticket-abc"
    assert SUPPORT_TICKET.outcomes_for("handle_ticket") == ("resolve", "ask_customer", "escalate", "transfer")


def test_outcomes_are_per_task_kind():
    returns = case_type()
    assert returns.outcomes_for("approve_return") == ("approve", "reject", "ask_customer")
    with pytest.raises(CaseTypeError, match="has no task kind 'handle_ticket': it has approve_return"):
        returns.outcomes_for("handle_ticket")


@pytest.mark.parametrize(("changes", "problem"), [
    ({"name": "Return Request"}, "lower-case words joined by hyphens"),
    ({"name": "return_request"}, "lower-case words joined by hyphens"),
    ({"id_prefix": "return/"}, "id prefix"),
    ({"workflow": ReturnInput}, "is not a @workflow.defn class"),
    ({"task_outcomes": {"approve_return": ()}}, "has no outcomes"),
    ({"task_outcomes": {"approve_return": ("approve", "approve")}}, "lists an outcome twice"),
])
def test_a_case_type_that_contradicts_itself_is_refused_when_declared(changes, problem):
    with pytest.raises(CaseTypeError, match=problem):
        case_type(**changes)


def test_two_case_types_may_not_share_a_name_or_an_id_prefix(monkeypatch):
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    registry.register(case_type())
    assert registry.register(case_type()) is registry.get("warranty-claim")  # a module imported twice
    with pytest.raises(CaseTypeError, match="registered already, by TicketWorkflow"):
        registry.register(case_type(name="support-ticket", id_prefix="other"))
    with pytest.raises(CaseTypeError, match="share the id prefix 'ticket'"):
        registry.register(case_type(name="complaint", id_prefix="ticket"))
    assert [t.name for t in registry.case_types()] == ["return-request", "support-ticket", "warranty-claim"]


def test_an_unknown_case_type_names_the_known_ones():
    with pytest.raises(CaseTypeError, match="unknown case type 'nope': known are return-request, support-ticket"):
        registry.get("nope")


def test_declared_outcomes_cannot_be_changed_afterwards():
    with pytest.raises(TypeError):
        SUPPORT_TICKET.task_outcomes["handle_ticket"] = ("resolve",)  # type: ignore[index]


def test_a_case_type_is_found_by_its_module_being_in_the_workflows_package(tmp_path, monkeypatch):
    import sys

    import workflows

    (tmp_path / "parcel_claim.py").write_text(
        "from pydantic import BaseModel\n"
        "from temporalio import workflow\n"
        "from workflows.registry import CaseType, register\n\n"
        "class ClaimInput(BaseModel):\n    order_id: str\n\n"
        "@workflow.defn(name='ParcelClaimProbe')\n"
        "class ParcelClaim:\n"
        "    @workflow.run\n"
        "    async def run(self, inp: ClaimInput) -> None:\n        return None\n\n"
        "register(CaseType(name='parcel-claim', title='Parcel claim', description='A lost parcel.',\n"
        "                  workflow=ParcelClaim, create_model=ClaimInput, input_model=ClaimInput,\n"
        "                  id_prefix='claim',\n"
        "                  default_department='logistics', task_outcomes={'review_claim': ('pay', 'refuse')}))\n")
    monkeypatch.setattr(workflows, "__path__", [*workflows.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    monkeypatch.setattr(registry, "_discovered", False)
    monkeypatch.delitem(sys.modules, "workflows.parcel_claim", raising=False)
    try:
        claim = registry.get("parcel-claim")
        assert claim.workflow_id("7") == "claim-7" and claim.outcomes_for("review_claim") == ("pay", "refuse")
        assert [t.name for t in registry.case_types()] == ["parcel-claim", "return-request", "support-ticket"]
    finally:
        sys.modules.pop("workflows.parcel_claim", None)
