"""The documentation pages work in a closed network: nothing they load comes from outside."""

from __future__ import annotations

import re

import httpx
import pytest

from api.main import create_app
from settings import Settings


@pytest.mark.parametrize(("page", "assets"), [
    ("/docs", ["/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/docs-assets/favicon.png"]),
    ("/redoc", ["/docs-redoc/redoc.standalone.js", "/docs-assets/favicon.png"]),
])
async def test_a_docs_page_and_everything_it_loads_come_from_the_api(db, page, assets):
    app = create_app(Settings(database_url=db.url), db=db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        r = await http.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        loaded = re.findall(r'(?:src|href)="([^"]+)"', r.text) + re.findall(r"url: '([^']+)'", r.text)
        assert loaded and all(not u.startswith(("http:", "https:", "//")) for u in loaded), loaded
        assert "cdn" not in r.text and "fonts.googleapis" not in r.text
        for asset in assets:
            assert asset in r.text
            got = await http.get(asset)
            assert got.status_code == 200 and len(got.content) > 1000, asset
            # a script names no other host it would load from (ReDoc's bundle named its logo's)
            assert b"cdn.redoc.ly" not in got.content, asset
        assert (await http.get("/openapi.json")).status_code == 200
