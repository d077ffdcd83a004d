"""OpenAPI 3.1 document generated from the route table and the pydantic models.

OpenAPI 3.1 schemas are JSON Schema 2020-12, which is what pydantic emits, so model schemas go into
``components/schemas`` unchanged (only ``$ref``s are pointed there).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from bridge.web.models import ErrorBody
from bridge.web.routes import ROUTES, Route

JsonMode = Literal["validation", "serialization"]
_ERROR_TEXT = {
    400: "The body is not a JSON object, or an id in the path is too long",
    401: "No, bad or expired credentials (`unauthenticated`)",
    429: "Too many failed sign-ins from this address lately (`too_many_failures`); retry after "
    "`Retry-After` seconds",
    403: "Not allowed for this role or organization (`forbidden`, with the deciding `rule`)",
    404: "No such item, or not visible to the caller (`not_found`)",
    409: "Idempotency-Key conflict, a referral status change the state machine forbids, a record id "
    "that belongs to another author, or a note that is not held",
    413: "The body is larger than the bridge accepts (`payload_too_large`)",
    422: "A field is invalid (`invalid_input`, with `field`) or the policy refused (`violations`)",
    502: "The EHR refused the request",
    503: "The store or the EHR is unavailable; retry after `Retry-After` seconds",
}


# the stable ``code`` of each refusal, by status, and what some routes add to them (issue 10):
# listed in each answer's description and as ``x-error-codes``
_CODES: dict[int, tuple[str, ...]] = {
    401: ("unauthenticated",),
    # identity_mismatch: the directory does not know the caller as the token says (role, organization)
    403: ("forbidden", "identity_mismatch"),
    404: ("not_found",),
    413: ("payload_too_large",),
    429: ("too_many_failures",),
    422: ("invalid_input",),
}
_ROUTE_CODES: dict[str, dict[int, tuple[str, ...]]] = {
    # a peer submits as themselves; a record id is its first author's
    "submit_encounter": {403: ("authorship_mismatch",), 409: ("record_id_taken",)},
    "submit_note": {403: ("authorship_mismatch",), 409: ("record_id_taken", "record_cosigned")},
    "check_note": {403: ("authorship_mismatch",)},
    "cosign_note": {409: ("not_held",)},
    "record_escalation": {409: ("not_held",)},
}


def error_codes(route: Route, status: int) -> tuple[str, ...]:
    """The stable codes a refusal of ``route`` with ``status`` may carry."""
    codes = _CODES.get(status, ())
    if status == 400 and (route.body is not None or route.security == "notify"):
        codes += ("malformed_json",)
    if status == 400 and route.path_patterns:
        codes += ("malformed_id",)
    if status == 409 and route.idempotent:
        codes += ("idempotency_conflict",)
    if status == 409 and route.name.startswith("referral_"):
        codes += ("invalid_transition",)
    return codes + _ROUTE_CODES.get(route.name, {}).get(status, ())


def _error_statuses(route: Route) -> list[int]:
    statuses: set[int] = set()
    if route.action is not None or route.security == "notify":
        statuses |= {401}
    if route.action is not None:
        statuses |= {403, 429, 503}
    if route.body is not None or route.security == "notify":
        statuses |= {400, 413, 422}
    if route.idempotent:
        statuses |= {409}
    if route.path_patterns:
        statuses |= {400, 404}  # 400 `malformed_id`: an id longer than its pattern allows
    if route.security == "notify":
        statuses |= {502, 503}
    if route.name.startswith("referral_"):
        statuses |= {409, 502}
    if route.name in _ROUTE_CODES:
        statuses |= set(_ROUTE_CODES[route.name])
    if route.name == "list_outbox":  # an out-of-range ``limit``
        statuses |= {422}
    return sorted(statuses)


def _collect_models(routes: Sequence[Route]) -> list[tuple[type[BaseModel], JsonMode]]:
    wanted: list[tuple[type[BaseModel], JsonMode]] = [(ErrorBody, "serialization")]
    for r in routes:
        if r.body is not None:
            wanted.append((r.body, "validation"))
        for answer in r.responses.values():
            if not isinstance(answer, str):
                wanted.append((answer, "serialization"))
    return list(dict.fromkeys(wanted))


def build_openapi(routes: Sequence[Route] = ROUTES, *, server_url: str | None = None) -> dict[str, Any]:
    keyed, top = models_json_schema(_collect_models(routes), ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: JsonMode) -> dict[str, Any]:
        return dict(keyed[(model, mode)])

    error_ref = ref(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "operationId": r.name,
            "summary": r.summary,
            "tags": [r.tag],
            "responses": {},
        }
        params: list[dict[str, Any]] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string", "pattern": pat}}
            for p, pat in r.path_patterns.items()
        ]
        for p in re.findall(r"{(\w+)}", r.path):
            if p not in r.path_patterns:
                params.append({"name": p, "in": "path", "required": True, "schema": {"type": "string"}})
        if r.idempotent:
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Repeat the same request with the same key to get the first answer back",
                    "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,200}$"},
                }
            )
        if r.name == "list_outbox":
            params.append(
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                }
            )
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(r.body, "validation")}},
            }
        elif r.security == "notify":
            op["requestBody"] = {
                # an empty POST is an R4 criteria subscription's "go and look" ping
                "required": r.method != "POST",
                "content": {
                    "application/fhir+json": {"schema": {"type": "object"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            }
        for status, answer in r.responses.items():
            if isinstance(answer, str):
                kind = "string" if answer.startswith("text/") else "object"
                content = {answer: {"schema": {"type": kind}}}
            else:
                content = {"application/json": {"schema": ref(answer, "serialization")}}
            described = answer if isinstance(answer, str) else answer.__name__
            op["responses"][str(status)] = {"description": described, "content": content}
        for status in _error_statuses(r):
            codes = error_codes(r, status)
            listed = f" Codes: {', '.join(f'`{c}`' for c in codes)}." if codes else ""
            op["responses"].setdefault(
                str(status),
                {
                    "description": _ERROR_TEXT[status] + listed,
                    "content": {"application/json": {"schema": error_ref}},
                    **({"x-error-codes": list(codes)} if codes else {}),
                },
            )
        if r.action is not None:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
            op["description"] = f"Requires the `{r.action.value}` permission."
        elif r.security == "notify":
            op["security"] = [{"notifyToken": []}]
        else:
            op["security"] = []
        paths.setdefault(r.path, {})[r.method.lower()] = op

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Peer Bridge",
            "version": "1",
            "description": "Peer-support work into clinic EHRs as FHIR R4; referrals back to peers.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "notifyToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
