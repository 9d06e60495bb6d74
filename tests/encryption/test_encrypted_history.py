"""A ticket run with encryption on: its history in Temporal holds no customer text, today's
code replays it with the keys, and the codec endpoint decrypts it for auditors only."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import httpx
from google.protobuf import json_format
from temporalio.client import Client
from temporalio.worker import Replayer

from api.main import create_app
from encryption import encrypting_converter
from encryption.keys import KeyRing
from harness import Stack, open_task_for, staff_ticket_body
from settings import Settings
from worker import WORKFLOWS, build_worker

SECRET_TEXT = "deliver to 12 Secret Lane, door code 4711"


async def test_what_temporal_stores_is_ciphertext_and_auditors_read_it_through_the_codec(dev_env, db, tokens,
                                                                                         task_queue):
    converter = encrypting_converter(KeyRing((("k1", secrets.token_bytes(32)),)))
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  namespace=dev_env.client.namespace, data_converter=converter)
    settings = Settings(database_url=db.url, task_queue=task_queue, faq_enabled=False, policy_refresh_seconds=0)
    app = create_app(settings, db=db, temporal=client)
    with ThreadPoolExecutor(max_workers=settings.activity_threads) as executor:
        async with build_worker(client, settings, db, executor):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                stack = Stack(http, db, settings, client, tokens)
                r = await http.post("/tickets", json=staff_ticket_body(body=SECRET_TEXT), headers=stack.as_("admin"))
                ticket = r.json()
                await open_task_for(stack, ticket["id"])

                raw = await dev_env.client.get_workflow_handle(ticket["workflow_id"]).fetch_history()
                stored = b"".join(event.SerializeToString() for event in raw.events)
                assert b"Secret Lane" not in stored and b"binary/encrypted" in stored
                await Replayer(workflows=WORKFLOWS, data_converter=converter).replay_workflow(raw)

                started = raw.events[0].workflow_execution_started_event_attributes.input
                body = {"payloads": json_format.MessageToDict(started)["payloads"]}
                decoded = await http.post("/codec/decode", json=body, headers=stack.as_("aud"))
                assert decoded.status_code == 200
                plain = json_format.ParseDict(decoded.json(), type(started)())
                assert SECRET_TEXT in plain.payloads[0].data.decode()
                assert (await http.post("/codec/decode", json=body, headers=stack.as_("ana"))).status_code == 403
