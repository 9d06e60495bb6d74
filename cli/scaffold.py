"""`ticketflow case new NAME`: the files of a new case type, ready to run and to change.

It writes a workflow module in `workflows/` (its case data, opening body, input, the
workflow and its registration), a time-skipping test in `tests/workflows/` that passes as
written and fails when the case stops doing what it tests, and a docs stub in
`docs/cases/`. Nothing else needs an edit: workers and the API find the type in the
registry (workflows/registry.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from workflows.registry import NAME

case_app = typer.Typer(help="Case types: write a new one.", no_args_is_help=True)

ROOT = Path(__file__).resolve().parents[1]


def names(name: str) -> dict[str, str]:
    words = name.split("-")
    return {
        "name": name,
        "module": "_".join(words),
        "cls": "".join(w.capitalize() for w in words),
        "title": " ".join(words).capitalize(),
        "task_kind": "review_" + "_".join(words),
    }


WORKFLOW = '''"""{title}: a case type written with `ticketflow case new {name}`.

What it does now: opens the case, puts a `{task_kind}` task in its department's
queue, and resolves the case when an agent approves or closes it when they reject. Change `run` to
compose the steps your case needs (see workflows/case.py and workflows/ticket.py), and
keep tests/workflows/test_{module}.py saying what the case must do.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.case import CaseWorkflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from models.ticket import TicketCreate, TicketInput, TicketSnapshot
    from workflows.registry import CaseType, register

CASE_TYPE = "{name}"
TASK_KIND = "{task_kind}"
OUTCOMES = ("approve", "reject")


class {cls}Data(BaseModel):
    """What only this kind of case carries (`case_data` in the opening body)."""

    summary: str | None = Field(default=None, max_length=2000, description="Anything the agent should know.")


class {cls}Create(TicketCreate):
    case_data: {cls}Data = Field(default_factory={cls}Data)


class {cls}Input(TicketInput):
    case_data: {cls}Data = Field(default_factory={cls}Data)


@workflow.defn
class {cls}Workflow(CaseWorkflow):
    CASE_TYPE = CASE_TYPE

    @workflow.run
    async def run(self, inp: {cls}Input) -> TicketSnapshot:
        return await self.run_case(inp)  # opens the case, runs steps(), finishes

    async def steps(self, inp: {cls}Input) -> None:
        task = await self.work_task(queue=self.snapshot.department, kind=TASK_KIND, allowed_outcomes=list(OUTCOMES),
                                    context={{"summary": inp.case_data.summary}})
        if task.outcome == "approve":
            await self.resolve(f"approved by {{task.assignee}}")
        else:
            await self.close(f"rejected by {{task.assignee}}")


{upper} = register(CaseType(
    name=CASE_TYPE,
    title="{title}",
    description="Describe here what a {title_lower} is and what the workflow does with it.",
    workflow={cls}Workflow,
    create_model={cls}Create,
    input_model={cls}Input,
    id_prefix="{name}",
    default_department="{department}",
    task_outcomes={{TASK_KIND: OUTCOMES}},
))
'''

TEST = '''"""{title}: what the case must do. Written by `ticketflow case new {name}`; keep it true."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from temporalio.worker import Worker

from models.ticket import TicketPolicy, TicketStatus
from workflow_fakes import FakeReadModel, work_task
from workflows import registry
from workflows.{module} import CASE_TYPE, TASK_KIND, {cls}Data, {cls}Input, {cls}Workflow


def {module}_input() -> {cls}Input:
    return {cls}Input(
        ticket_id=uuid.uuid4().hex, customer_id="cust-1", subject="{title}", body="Please look at this.",
        department="{department}", opened_at=datetime.now(UTC), policy=TicketPolicy(faq_enabled=False),
        case_data={cls}Data(summary="written by the scaffold's test"),
    )


def test_the_case_type_is_registered():
    case_type = registry.get(CASE_TYPE)
    assert case_type.workflow is {cls}Workflow
    assert case_type.outcomes_for(TASK_KIND) == ("approve", "reject")


@pytest.mark.parametrize(("outcome", "status"), [("approve", TicketStatus.resolved), ("reject", TicketStatus.closed)])
async def test_an_agents_decision_settles_the_case(fresh_time_env, task_queue, outcome, status):
    fake = FakeReadModel()
    inp = {module}_input()
    async with Worker(fresh_time_env.client, task_queue=task_queue, workflows=[{cls}Workflow],
                      activities=fake.activities()):
        workflow_id = registry.get(CASE_TYPE).workflow_id(inp.ticket_id)
        handle = await fresh_time_env.client.start_workflow({cls}Workflow.run, inp, id=workflow_id,
                                                            task_queue=task_queue)
        task = await work_task(handle, outcome)
        assert (task.kind, task.allowed_outcomes) == (TASK_KIND, ["approve", "reject"])
        result = await handle.result()
    assert result.status == status and result.case_type == CASE_TYPE
    assert fake.tickets[inp.ticket_id].status == status  # the read model saw the end too
'''

DOCS = '''# {title}

Written with `ticketflow case new {name}`. Replace each line below with the truth.

- **What it is:** who opens one, and why.
- **Opening it:** `POST /cases/{name}` with the common fields and `case_data` (see
  `GET /case-types` for the JSON Schema).
- **What the workflow does:** its steps, in order, and what each waits for.
- **Tasks:** `{task_kind}` in the `{department}` queue; outcomes `approve`, `reject`.
- **SLA:** the targets that apply.
- **Files:** `workflows/{module}.py`, `tests/workflows/test_{module}.py`, this page.
'''


def write_case(name: str, root: Path, *, department: str = "general", force: bool = False) -> list[Path]:
    """Write the three files of case type `name` under `root`; returns them."""
    if not NAME.match(name):
        raise ValueError(f"case type name {name!r}: use lower-case words joined by hyphens, e.g. warranty-claim")
    if not re.fullmatch(r"[a-z0-9_-]+", department):
        raise ValueError(f"department {department!r}: use lower-case letters, digits, '-' and '_'")
    n = names(name)
    values = {**n, "department": department, "upper": n["module"].upper(), "title_lower": n["title"].lower()}
    files = {
        root / "workflows" / f"{n['module']}.py": WORKFLOW.format(**values),
        root / "tests" / "workflows" / f"test_{n['module']}.py": TEST.format(**values),
        root / "docs" / "cases" / f"{name}.md": DOCS.format(**values),
    }
    existing = [path for path in files if path.exists()]
    if existing and not force:
        raise FileExistsError("already there (use --force to overwrite): "
                              + ", ".join(str(p.relative_to(root)) for p in existing))
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


@case_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The case type's name: lower-case words joined by hyphens.")],
    department: Annotated[str, typer.Option(help="The department that works these cases.")] = "general",
    root: Annotated[Path, typer.Option(help="The project to write into.")] = ROOT,
    force: Annotated[bool, typer.Option(help="Overwrite files that are already there.")] = False,
) -> None:
    """Write a new case type: its workflow module, a test that passes as written, a docs stub."""
    from workflows import registry

    if name in {case_type.name for case_type in registry.case_types()}:
        typer.echo(f"case type {name} exists already", err=True)
        raise typer.Exit(1)
    try:
        written = write_case(name, root, department=department, force=force)
    except (ValueError, FileExistsError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    for path in written:
        typer.echo(f"wrote {path.relative_to(root)}")
    module = names(name)["module"]
    typer.echo(f"next: pytest tests/workflows/test_{module}.py, then change workflows/{module}.py to do what a "
               f"{names(name)['title'].lower()} needs; `ticketflow up` serves POST /cases/{name}")
