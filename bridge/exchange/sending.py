"""Sending one submission's Bundle to an EHR, as a transaction or as ordered conditional writes.

What the endpoint is known to refuse is left out before sending, with the reason. Otherwise the
Bundle goes as one transaction; when the server refuses that for good (405, 501, ``not-supported``,
a 403: :func:`bridge.clients.status.refusal`), the same entries go one request at a time, in order,
each a conditional create or update (so a retry never duplicates), with the ``urn:uuid``
references rewritten to what the server assigned. An entry the server refuses is learned
(:meth:`AsyncFhirClient.learn`), listed as skipped with the reason, and the rest still goes; if
every entry went through alone, it was the transaction itself the server refused, and that is
learned instead.

The outcome lists each resource written (type, id, status) and each skipped one (type, reason):
a submission is never called delivered for what was not written, and when none of the resources
that carry the work itself was written (``required``), the send fails with the reasons.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.clients import AsyncFhirClient, BundleResult
from bridge.clients.capabilities import TRANSACTION
from bridge.clients.status import outcome_summary, refusal
from bridge.errors import FhirHttpError, FhirRequestError, UnsupportedError

log = logging.getLogger("bridge.exchange.sending")

_INTERACTION = {"POST": "create", "PUT": "update"}


@dataclass(frozen=True)
class Skipped:
    type: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "reason": self.reason}


@dataclass(frozen=True)
class Written:
    type: str
    id: str
    status: int
    version_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "status": self.status, "version": self.version_id}


@dataclass(frozen=True)
class Prepared:
    """What a submission sends: the transaction Bundle, and what was left out of it and why."""

    bundle: Mapping[str, Any]
    skipped: tuple[Skipped, ...] = ()


@dataclass
class SendOutcome:
    written: list[Written] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    transaction: bool = True

    def result(self) -> dict[str, Any]:
        """What the outbox keeps (``refs`` and ``statuses`` as before, for older readers)."""
        return {
            "refs": [f"{w.type}/{w.id}" for w in self.written],
            "statuses": [w.status for w in self.written],
            "written": [w.to_dict() for w in self.written],
            "skipped": [s.to_dict() for s in self.skipped],
            "mode": "transaction" if self.transaction else "ordered-writes",
        }


def _entry_type(entry: Mapping[str, Any]) -> str:
    return str((entry.get("resource") or {}).get("resourceType") or "")


def _interaction(entry: Mapping[str, Any]) -> str:
    return _INTERACTION.get(str((entry.get("request") or {}).get("method", "")).upper(), "create")


async def send_submission(
    client: AsyncFhirClient,
    bundle: Mapping[str, Any],
    *,
    skipped: Sequence[Skipped] = (),
    required: Sequence[str] = (),
) -> SendOutcome:
    caps = await client.capabilities()
    outcome = SendOutcome(skipped=list(skipped))
    entries: list[dict[str, Any]] = []
    for entry in bundle.get("entry") or []:
        rtype, interaction = _entry_type(entry), _interaction(entry)
        if caps.can(rtype, interaction):
            entries.append(dict(entry))
        else:
            outcome.skipped.append(Skipped(rtype, caps.why_not(rtype, interaction)))
    entries = _without_dangling(entries, outcome)
    if caps.supports_transaction:
        try:
            result = await client.transaction({**bundle, "entry": entries})
        except FhirHttpError as exc:
            why = refusal(exc)
            if why is None:
                raise
            log.info("sending %s: transaction refused; ordered conditional writes", client.name)
            before = len(outcome.skipped)
            await _one_by_one(client, entries, outcome)
            if len(outcome.skipped) == before:
                client.learn(TRANSACTION, "transaction", False, why)
        else:
            _transaction_written(result, outcome)
    else:
        await _one_by_one(client, entries, outcome)
    _check_required(outcome, required)
    return outcome


async def check_references(client: AsyncFhirClient, bundle: Mapping[str, Any], outcome: SendOutcome) -> bool:
    """Read back one written resource that names the patient and compare its ``subject`` with what
    was sent: a server that stores a reference as text, or rewrites it, is caught the first time
    (the caller does this once per endpoint). True when it holds (or there was nothing to check)."""
    sent = {
        str(e["resource"].get("resourceType")): e["resource"]["subject"]["reference"]
        for e in bundle.get("entry") or []
        if isinstance((e.get("resource") or {}).get("subject"), dict)
        and "reference" in e["resource"]["subject"]
    }
    for w in outcome.written:
        if w.type in sent:
            stored = await client.read_raw(f"{w.type}/{w.id}")
            got = str((stored.get("subject") or {}).get("reference", ""))
            if got.removeprefix(client.base_url + "/") != sent[w.type]:
                log.warning("sending %s: %s.subject was not stored as sent", client.name, w.type)
                return False
            return True
    return True


def _transaction_written(result: BundleResult, outcome: SendOutcome) -> None:
    bad = [e for e in result.entries if not 200 <= e.status < 300]
    if bad:
        raise FhirRequestError(
            f"transaction entry answered {bad[0].status}{outcome_summary(bad[0].outcome)}",
            status=bad[0].status,
            outcome=bad[0].outcome,
        )
    for e in result.entries:
        if e.resource_type and e.id:
            outcome.written.append(Written(e.resource_type, e.id, e.status, e.version_id))


async def _one_by_one(client: AsyncFhirClient, entries: list[dict[str, Any]], outcome: SendOutcome) -> None:
    outcome.transaction = False
    ids: dict[str, str] = {}  # fullUrl -> Type/id as written
    gone: set[str] = set()
    for entry in entries:
        full_url = str(entry.get("fullUrl", ""))
        rtype, interaction = _entry_type(entry), _interaction(entry)
        resource = _rewrite(entry["resource"], ids, gone)
        if not isinstance(resource, dict) or _lost_its_target(resource):
            gone.add(full_url)
            outcome.skipped.append(Skipped(rtype, "what it refers to was not written"))
            continue
        request = entry.get("request") or {}
        url = str(request.get("url", ""))
        try:
            if interaction == "update" and "?" in url:
                written = await client.update_conditional(resource, url.split("?", 1)[1])
            elif interaction == "update":
                written = await client.update(resource)
            elif request.get("ifNoneExist"):
                written = await client.create_if_none_exist(resource, str(request["ifNoneExist"]))
            else:
                written = await client.create(resource)
        except FhirHttpError as exc:
            why = refusal(exc)
            if why is None:
                raise
            client.learn(rtype, interaction, False, why)
            gone.add(full_url)
            outcome.skipped.append(Skipped(rtype, why))
            continue
        if written.id is None:
            raise UnsupportedError(f"{rtype} {interaction}: the server answered without an id")
        ids[full_url] = f"{written.resource_type}/{written.id}"
        outcome.written.append(Written(written.resource_type, written.id, written.status, written.version_id))


def _without_dangling(entries: list[dict[str, Any]], outcome: SendOutcome) -> list[dict[str, Any]]:
    """Entries left out point nowhere: drop the references to them (a Provenance whose target is
    gone goes too)."""
    present = {str(e.get("fullUrl", "")) for e in entries}
    every = {str(r) for r in _urn_refs(entries)}
    gone = every - present
    if not gone:
        return entries
    kept: list[dict[str, Any]] = []
    for entry in entries:
        resource = _rewrite(entry["resource"], {}, gone)
        if not isinstance(resource, dict) or _lost_its_target(resource):
            outcome.skipped.append(Skipped(_entry_type(entry), "what it refers to was not written"))
            continue
        kept.append({**entry, "resource": resource})
    return kept


def _urn_refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [str(value["reference"])] if str(value.get("reference", "")).startswith("urn:uuid:") else []
        for v in value.values():
            found += _urn_refs(v)
        return found
    if isinstance(value, list):
        return [r for v in value for r in _urn_refs(v)]
    return []


def _rewrite(value: Any, ids: Mapping[str, str], gone: set[str]) -> Any:
    """``value`` with ``urn:uuid`` references replaced by what was written (``ids``) and
    references to what was not (``gone``) removed; None when nothing of it is left."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref in gone:
            return None
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "reference" and isinstance(v, str) and v in ids:
                out[k] = ids[v]
                continue
            new = _rewrite(v, ids, gone)
            if new is not None:
                out[k] = new
            elif not (isinstance(v, dict | list)):
                out[k] = v
        return out or None
    if isinstance(value, list):
        items = [_rewrite(v, ids, gone) for v in value]
        kept = [i for i in items if i is not None]
        return kept or None
    return value


def _lost_its_target(resource: Mapping[str, Any]) -> bool:
    # the elements of the resources sent whose loss leaves nothing to say: Provenance.target (1..*),
    # and the note a Communication announces
    rtype = resource.get("resourceType")
    return (rtype == "Provenance" and not resource.get("target")) or (
        rtype == "Communication" and not resource.get("about")
    )


def _check_required(outcome: SendOutcome, required: Sequence[str]) -> None:
    if not required:
        return
    if any(w.type in required for w in outcome.written):
        return
    reasons = "; ".join(f"{s.type}: {s.reason}" for s in outcome.skipped if s.type in required)
    raise UnsupportedError(f"nothing that carries the work was written ({reasons or 'not sent'})")
