"""The baseline of bench/throughput.py: a workflow that only runs activities with trivial bodies.

It runs them in the shape it is given: a list of steps, each the task queues of the
activities that run at once (bench/throughput.py reads the shape off a real ticket's
history). It lives in a module of its own, importing nothing but temporalio; its worker
shares this module with the workflow sandbox, as worker.py shares ticketflow's workflow
modules, so both sides pay the same sandbox costs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow


@dataclass
class BareInput:
    steps: list[list[str]]  # per step, the task queue of each activity started together
    text: str


@activity.defn(name="bare_step")
def bare_step(text: str) -> int:
    return len(text)


@workflow.defn
class BareTicket:
    @workflow.run
    async def run(self, inp: BareInput) -> int:
        done = 0
        for step in inp.steps:
            await asyncio.gather(*(
                workflow.execute_activity(bare_step, inp.text, task_queue=queue,
                                          start_to_close_timeout=timedelta(seconds=30))
                for queue in step
            ))
            done += len(step)
        return done
