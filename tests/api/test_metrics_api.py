"""GET /metrics: the API's requests counted and timed by route template, never by the path
a caller sent, and the page gone when the setting turns it off."""

from __future__ import annotations

import httpx
import pytest

from api.main import create_app
from settings import Settings


def sample(page: str, name: str, **labels: str) -> float | None:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in page.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_requests_are_counted_and_timed_by_route_template_without_ids(db):
    app = create_app(Settings(database_url=db.url), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for ticket in ("T-SECRET-1", "T-SECRET-2"):
            assert (await http.get(f"/tickets/{ticket}")).status_code == 401
        assert (await http.get("/no/such/path")).status_code == 404
        page = (await http.get("/metrics")).text

    assert sample(page, "ticketflow_http_requests_total", method="GET", route="/tickets/{ticket_id}", status="401") == 2
    assert sample(page, "ticketflow_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert sample(page, "ticketflow_http_request_duration_seconds_count", method="GET",
                  route="/tickets/{ticket_id}") == 2
    assert "T-SECRET" not in page and "/no/such/path" not in page
    assert "process_resident_memory_bytes" in page
    from tests.workflows.test_metrics import dashboard_metrics

    exported = {line.split("{")[0].split(" ")[0] for line in page.splitlines() if not line.startswith("#")}
    assert {n for n in dashboard_metrics() if n.startswith("ticketflow_http_")} <= exported


async def test_the_page_can_be_turned_off(db):
    app = create_app(Settings(database_url=db.url, metrics_enabled=False), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/metrics")).status_code == 404


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_the_page_is_read_only(db, method):
    app = create_app(Settings(database_url=db.url), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.request(method, "/metrics")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
