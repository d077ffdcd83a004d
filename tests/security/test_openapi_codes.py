"""Every refusal issue 10 added is in the OpenAPI document, with its status and stable code."""

from __future__ import annotations

import pytest

from bridge.errors import (
    AuthorshipError,
    CosignedRecordError,
    IdentityMismatchError,
    NotHeldError,
    RecordIdTakenError,
)
from bridge.web.openapi import build_openapi
from bridge.web.routes import ROUTES

DOC = build_openapi()
PROTECTED = sorted((r.path, r.method.lower()) for r in ROUTES if r.action is not None)


def _codes(path: str, method: str, status: int) -> list[str]:
    answer = DOC["paths"][path][method]["responses"].get(str(status), {})
    return list(answer.get("x-error-codes", []))


@pytest.mark.parametrize(("path", "method"), PROTECTED)
def test_every_protected_route_may_refuse_a_caller_the_directory_disagrees_with(
    path: str, method: str
) -> None:
    assert IdentityMismatchError.code in _codes(path, method, 403)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/encounters", 403, AuthorshipError.code),
        ("/api/v1/notes", 403, AuthorshipError.code),
        ("/api/v1/notes/check", 403, AuthorshipError.code),
        ("/api/v1/encounters", 409, RecordIdTakenError.code),
        ("/api/v1/notes", 409, RecordIdTakenError.code),
        ("/api/v1/notes", 409, CosignedRecordError.code),
        ("/api/v1/notes/{note_ref}/cosign", 409, NotHeldError.code),
        ("/api/v1/notes/{note_ref}/escalation", 409, NotHeldError.code),
    ],
)
def test_the_new_refusals_are_documented(path: str, status: int, code: str) -> None:
    assert code in _codes(path, "post", status)
    assert f"`{code}`" in DOC["paths"][path]["post"]["responses"][str(status)]["description"]
