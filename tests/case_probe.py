"""A second case type, as small as one can be, for tests that need more than the support
ticket: a parcel claim that an agent pays or refuses. Registered by the tests that use it
(`probe_case_type`), never at import, so other tests see only the shipped types."""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio import workflow

from models.enums import Priority
from models.ticket import TicketCreate, TicketInput, TicketSnapshot, TicketStatus
from workflows.case import CaseWorkflow
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
        self.open(inp)
        await self.publish()
        task = await self.human_task(queue=self.snapshot.department, priority=Priority.normal, kind="review_claim",
                                     allowed_outcomes=["pay", "refuse"],
                                     context={"parcel": inp.case_data.parcel})
        self.set_status(TicketStatus.resolved if task.outcome == "pay" else TicketStatus.closed,
                        f"claim {task.outcome}")
        await self.publish()
        await self.finish()
        return self.snapshot


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
        self.open(inp)
        await self.publish()
        await self.human_task(queue=self.snapshot.department, priority=Priority.normal, kind="call_back",
                              allowed_outcomes=["called"])
        self.set_status(TicketStatus.resolved, "called back")
        await self.publish()
        await self.finish()
        return self.snapshot


def callback_case_type() -> CaseType:
    return CaseType(name="callback-request", title="Callback request", description="Call the customer back.",
                    workflow=CallbackRequest, create_model=TicketCreate, input_model=TicketInput,
                    id_prefix="callback", default_department="general", task_outcomes={"call_back": ("called",)})
