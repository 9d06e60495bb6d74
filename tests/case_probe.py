"""A second case type, as small as one can be, for tests that need more than the support
ticket: a parcel claim that an agent pays or refuses. Registered by the tests that use it
(`probe_case_type`), never at import, so other tests see only the shipped types."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows.case import CaseWorkflow

with workflow.unsafe.imports_passed_through():
    from models.enums import Priority
    from models.ticket import TicketCreate, TicketInput, TicketSnapshot, TicketStatus
    from workflows.registry import CaseType


class ClaimData(BaseModel):
    parcel: str = Field(min_length=1, max_length=40, description="Tracking number of the lost parcel.")


class ClaimCreate(TicketCreate):
    case_data: ClaimData


class ClaimInput(TicketInput):
    case_data: ClaimData


@workflow.defn(name="ParcelClaimProbe")
class ParcelClaim(CaseWorkflow):
    CASE_TYPE = "parcel-claim"

    @workflow.run
    async def run(self, inp: ClaimInput) -> TicketSnapshot:
        return await self.run_case(inp)

    async def steps(self, inp: ClaimInput) -> None:
        task = await self.work_task(queue=self.snapshot.department, priority=Priority.normal, kind="review_claim",
                                    allowed_outcomes=["pay", "refuse"], context=inp.case_data)
        self.set_status(TicketStatus.resolved if task.outcome == "pay" else TicketStatus.closed,
                        f"claim {task.outcome}")
        await self.publish()


def probe_case_type() -> CaseType:
    return CaseType(name="parcel-claim", title="Parcel claim", description="A parcel the carrier lost.",
                    workflow=ParcelClaim, create_model=ClaimCreate, input_model=ClaimInput, id_prefix="claim",
                    default_department="logistics", task_outcomes={"review_claim": ("pay", "refuse")})


@workflow.defn(name="CallbackRequestProbe")
class CallbackRequest(CaseWorkflow):
    """A case with no case data of its own, so a chat message can open one."""

    CASE_TYPE = "callback-request"

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketSnapshot:
        return await self.run_case(inp)

    async def steps(self, inp: TicketInput) -> None:
        await self.work_task(queue=self.snapshot.department, kind="call_back", allowed_outcomes=["called"])
        await self.resolve("called back")


def callback_case_type() -> CaseType:
    return CaseType(name="callback-request", title="Callback request", description="Call the customer back.",
                    workflow=CallbackRequest, create_model=TicketCreate, input_model=TicketInput,
                    id_prefix="callback", default_department="general", task_outcomes={"call_back": ("called",)})


@workflow.defn(name="ReviewProbe")
class ReviewProbe(CaseWorkflow):
    """A case composed from the parts and nothing else: an SLA clock, a task that may be
    escalated or transferred on its way, a question to the customer, a resolution."""

    CASE_TYPE = "review-probe"

    @workflow.run
    async def run(self, inp: TicketInput) -> TicketSnapshot:
        return await self.run_case(inp)

    async def steps(self, inp: TicketInput) -> None:
        self.sla.start()
        task = await self.work_task(queue=self.snapshot.department, kind="review",
                                    allowed_outcomes=["approve", "escalate", "transfer"])
        answer = await self.ask_customer("Anything else?", timedelta(hours=1), key="more",
                                         author=task.assignee or "team")
        await self.resolve(f"{task.outcome} in {task.queue}; the customer said {answer or 'nothing'}")
