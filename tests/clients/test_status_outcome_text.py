"""Error messages built from an OperationOutcome carry severities and codes, never free text: a
server may echo identifiers in ``diagnostics`` (or anywhere), and the message reaches the audit
log and the API. The OperationOutcome itself stays on the error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bridge.clients.status import error_for_response, outcome_summary


def _answer(status: int, outcome: dict[str, Any]) -> httpx.Response:
    request = httpx.Request("POST", "https://ehr.test/fhir?identifier=MRN-42")
    return httpx.Response(status, json=outcome, request=request)


@pytest.mark.parametrize(
    ("issues", "summary"),
    [
        (
            [{"severity": "error", "code": "invalid", "diagnostics": "MRN-42 is not valid"}],
            " (error invalid)",
        ),
        ([{"severity": "error", "code": "MRN-42"}], " (error ?)"),  # not a code token: free text
        ([{"severity": "fatal", "code": "exception", "details": {"text": "MRN-42"}}], " (fatal exception)"),
        ([{"code": "throttled"}], " (? throttled)"),
        (
            [{"severity": "warning", "code": "processing"}] * 5,
            " (" + "; ".join(["warning processing"] * 3) + ")",
        ),
        ([], ""),
        ("MRN-42", ""),
        (["MRN-42"], ""),
    ],
)
def test_summary_has_no_free_text(issues: Any, summary: str) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": issues}
    assert outcome_summary(outcome) == summary
    err = error_for_response(_answer(422, outcome), endpoint="clinic")
    assert "MRN-42" not in str(err)
    assert err.outcome == outcome  # kept whole for the outbox item
