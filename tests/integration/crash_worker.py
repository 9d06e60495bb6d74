"""A worker that dies at the worst moment for a refund, for test_refund_crash.py.

It runs the real activities, configured like any deployment from ``TICKETFLOW_*``
environment variables. Once ``create_refund`` has come back from the ERP, and before
Temporal hears of it, it writes the refund id to ``--marker`` and hangs until the test
SIGKILLs it.

    python tests/integration/crash_worker.py --address 127.0.0.1:7233 --task-queue q \
        --policy policy.csv --marker refunded.txt
"""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor, Worker

from activities.systems import build_system_activities
from policies import MODEL_PATH, Authorizer
from settings import Settings


class HangAfterRefund(Interceptor):
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Hang(next, self.marker)


class _Hang(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, marker: Path) -> None:
        super().__init__(next)
        self.marker = marker

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        if activity.info().activity_type == "create_refund":
            partial = self.marker.with_suffix(".partial")
            partial.write_text(result.id)
            partial.replace(self.marker)  # the test never reads half a file
            await asyncio.Event().wait()
        return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--policy", type=Path, required=True, help="Casbin policy file that allows the refund")
    parser.add_argument("--marker", type=Path, required=True)
    args = parser.parse_args()

    client = await Client.connect(args.address, namespace=args.namespace, data_converter=pydantic_data_converter)
    systems = build_system_activities(Settings(_env_file=None), authorizer=Authorizer.from_files(MODEL_PATH, args.policy))
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="activity") as executor:
        worker = Worker(client, task_queue=args.task_queue, activities=systems.activities(),
                        activity_executor=executor, interceptors=[HangAfterRefund(args.marker)])
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
