"""The served OpenAPI document: in sync with the router, and honoured by every answer (schemathesis)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bridge.web import create_app
from bridge.web.auth import Authenticator
from bridge.web.openapi import build_openapi
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import TokenFactory, bearer
from tests.web.live import serve_in_thread
from tests.web.stack import add_peer, environment, write_stack

# routes that are not part of the JSON API (HTML pages, static files, the document itself)
NOT_IN_DOCUMENT = re.compile(r"^/(inbox|ops|static|api/openapi\.json)")


async def test_document_matches_the_router(client: Any) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.method != "HEAD" and r.resource is not None and not NOT_IN_DOCUMENT.match(r.resource.canonical)
    }
    assert documented == served


def test_every_ref_resolves() -> None:
    doc = build_openapi()
    text = str(doc)
    for name in re.findall(r"#/components/schemas/([A-Za-z0-9_\-]+)", text):
        assert name in doc["components"]["schemas"], name


@pytest.fixture(scope="module")
def live_url(
    jwks: dict[str, Any], sandbox_ehr: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The real service: ExchangeService on a SQLite file, the rule files, the sandbox EHR."""
    stack = write_stack(sandbox_ehr, tmp_path_factory.mktemp("openapi"), port=0)
    # the caller below, as the directory knows them (else every call is refused: identity_mismatch)
    add_peer(stack, "peer-1", role="peer-supervisor", level="supervisor")
    with environment(stack) as s:
        auth = Authenticator.from_settings(s, jwks=jwks)
        with serve_in_thread(create_app(s, authenticator=auth)) as url:
            yield url


@pytest.fixture(scope="module")
def api_schema(live_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{live_url}/api/openapi.json")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
_DOC = build_openapi()
# (method, path, mode): invalid requests only where there is an input to get wrong
CASES = [
    (m.upper(), p, mode)
    for p, ops in _DOC["paths"].items()
    for m, op in ops.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or op.get("parameters") or op.get("requestBody")
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_api_answers_match_the_document(
    api_schema: Any, live_url: str, make_token: TokenFactory, method: str, path: str, mode: GenerationMode
) -> None:
    """Generated requests (valid and invalid) to every operation: no 5xx, every answer documented."""
    operation = api_schema[path][method]
    # a supervisor reaches the most operations; refusals by role are the matrix test's job
    headers = bearer(make_token("peer-supervisor"))

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=live_url, headers=headers, checks=CHECKS)

    run()


def test_live_document_is_served(live_url: str) -> None:
    assert httpx.get(f"{live_url}/api/openapi.json").json()["info"]["title"] == "Peer Bridge"
