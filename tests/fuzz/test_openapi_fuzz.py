"""Schemathesis fuzzes the running API from its own OpenAPI document, once per kind of
caller, and holds every answer to the document: no server error (5xx), no status code the
operation does not document, no body that does not match the documented schema or media
type.

Callers: no token, a customer, an auditor, an agent of one department, a supervisor and an
admin (see CALLERS in conftest.py). Requests: valid and invalid ones generated from the document; half
of them name objects that exist (a ticket, its task, an agent, an FAQ entry, a user, a token),
so the routes get past "not found". The chat webhook's bodies are signed.

Bounds, so the module stays within about three minutes on a 2-core machine (about two
on an idle one):
- `EXAMPLES` requests per operation and caller (`STREAM_EXAMPLES` for the event stream,
  each of which is read for `STREAM_SECONDS`); no shrinking, every finding is listed as found;
- a deadline per request: answered within `REQUEST_TIMEOUT` seconds or it is a failure
  (Hypothesis' own per-example deadline is off: it would time our server, not the test);
  and one per caller, the `timeout` mark;
- the data comes from a fixed seed, `SEED`, so CI fuzzes the same requests every run.

It runs on SQLite only: one run takes most of the budget, and again on PostgreSQL would
double it. The route tests in tests/api cover both databases.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks
from schemathesis.errors import FailureGroup

from connectors.signing import SIGNATURE_HEADER, sign

SEED = 20260401
EXAMPLES = 30
STREAM_EXAMPLES = 3
STREAM_SECONDS = 2.0
REQUEST_TIMEOUT = 20.0
# What "passes" means. Other Schemathesis checks judge what the API should accept, which
# the document cannot say for every rule (a department that exists, a ticket's state).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
STREAMS = {"/events"}
# Signed by the chat platform instead of a bearer token: every caller but the anonymous one
# signs them, so the fuzzer gets past the signature to the body.
WEBHOOKS = {"/webhooks/chat"}


class Signed(requests.auth.AuthBase):
    """Signs the body exactly as it is sent, as the chat platform does."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        request.headers[SIGNATURE_HEADER] = sign(self.secret, body.encode() if isinstance(body, str) else body)
        return request


@dataclass
class Finding:
    caller: str
    operation: str
    status: int | str
    problem: str
    detail: str
    reproduce: str
    count: int = 1

    def __str__(self) -> str:
        return (f"{self.operation} as {self.caller}: {self.status} {self.problem} (x{self.count})\n"
                f"    {self.detail}\n    {self.reproduce}")


@dataclass
class Report:
    caller: str
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    requests: int = 0
    statuses: dict[str, set[int]] = field(default_factory=dict)

    def add(self, operation: str, status: int | str, problem: str, detail: str, reproduce: str) -> None:
        key = (operation, str(status), problem)
        if key in self.findings:
            self.findings[key].count += 1
        else:
            self.findings[key] = Finding(self.caller, operation, status, problem, _first_lines(detail), reproduce)


def _first_lines(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][:lines]
    return "\n    ".join(kept)


def _strategy(operation, known: dict[str, str | int]) -> st.SearchStrategy:  # noqa: ANN001
    """Valid and invalid requests; where the path names objects, half of them name objects
    that exist."""
    query = {"wait": 0} if any(p.name == "wait" for p in operation.query) else None  # no FAQ worker publishes
    names = set(re.findall(r"{(\w+)}", operation.path))
    options = [operation.as_strategy(GenerationMode.POSITIVE, query=query),
               operation.as_strategy(GenerationMode.NEGATIVE, query=query)]
    if names and names <= known.keys():
        existing = {name: known[name] for name in names}
        options.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=existing, query=query))
        options.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=existing, query=query))
    return st.one_of(options)


def _operations(schema) -> Iterator:  # noqa: ANN001
    for result in schema.get_all_operations():
        yield result.ok()  # a document Schemathesis cannot read fails here, loudly


def fuzz(target, caller: str) -> Report:  # noqa: ANN001 - tests/fuzz/conftest.py's FuzzTarget
    """Every operation as `caller`; runs on a thread of its own (blocking HTTP) while the
    API serves on the event loop."""
    report = Report(caller)
    schema = schemathesis.openapi.from_url(f"{target.base_url}/openapi.json", config=schemathesis.Config(seed=SEED))
    with requests.Session() as session:
        for operation in _operations(schema):
            stream = operation.path in STREAMS
            timeout = (REQUEST_TIMEOUT, STREAM_SECONDS) if stream else REQUEST_TIMEOUT
            signed = operation.path in WEBHOOKS and caller != "anonymous"
            extra = {"auth": Signed(target.webhook_secret)} if signed else {}

            @seed(SEED)
            @settings(max_examples=STREAM_EXAMPLES if stream else EXAMPLES, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=_strategy(operation, target.known))
            def example(case) -> None:  # noqa: ANN001
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
                case.headers.update(target.headers(caller))
                report.requests += 1
                try:
                    response = case.call(base_url=target.base_url, session=session, timeout=timeout, **extra)
                except requests.RequestException as exc:
                    report.add(operation.label, "no answer", type(exc).__name__, str(exc),
                               case.as_curl_command())
                    return
                finally:
                    target.keep_access(caller)
                report.statuses.setdefault(operation.label, set()).add(response.status_code)
                try:
                    case.validate_response(response, checks=CHECKS)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        report.add(operation.label, response.status_code, failure.title, failure.message,
                                   case.as_curl_command(headers=dict(response.request.headers)))

            example()
    return report


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_the_api_answers_as_its_document_says(fuzz_target, caller: str):  # noqa: ANN001
    started = time.monotonic()
    report = await asyncio.to_thread(fuzz, fuzz_target, caller)
    took = time.monotonic() - started
    print(f"fuzzed as {caller}: {report.requests} requests over {len(report.statuses)} operations in {took:.0f} s")
    findings = sorted(report.findings.values(), key=lambda f: (f.operation, str(f.status), f.problem))
    if findings:
        pytest.fail(f"{len(findings)} kind(s) of answers break the OpenAPI document, fuzzing as {caller}:\n"
                    + "\n".join(str(f) for f in findings), pytrace=False)
