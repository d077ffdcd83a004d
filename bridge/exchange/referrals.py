"""Referrals: the inbox (the peer view of a clinician's ServiceRequest + Task) and the peer's
actions on it, which move the Task at its EHR through the state machine of
:mod:`bridge.exchange.task_state`. Reads are audited as views by the caller; the practitioner who
accepts a referral is stored with it (its assignee).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge.clients.status import refusal
from bridge.domain import Referral, ReferralStatus
from bridge.errors import (
    BridgeError,
    FhirHttpError,
    FhirRequestError,
    InputError,
    StateTransitionError,
    UnsupportedError,
)
from bridge.exchange.authorship import verify_identity
from bridge.exchange.context import ExchangeContext
from bridge.exchange.inbound import InboundSync
from bridge.exchange.payload import OutboxPayload
from bridge.exchange.task_state import TARGET, ReferralAction, check_action, parse_action
from bridge.exchange.views import Actor, InboxItem
from bridge.mappers import task_with_status
from bridge.store import OutboxItem

log = logging.getLogger("bridge.exchange.referrals")

log = logging.getLogger("bridge.exchange.referrals")

# an attempt to move a Task that keeps changing under us gives up after this many reads
CONFLICT_ATTEMPTS = 3


class Referrals:
    def __init__(self, ctx: ExchangeContext, inbound: InboundSync) -> None:
        self.ctx = ctx
        self.inbound = inbound  # refreshes the inbox copy of a Task after an action

    # --- the inbox -------------------------------------------------------------------------------

    async def list(
        self,
        *,
        actor: Actor,
        statuses: Sequence[ReferralStatus] | None = None,
        endpoint: str | None = None,
        limit: int = 100,
        offset: int = 0,
        first: Sequence[ReferralStatus] = (),
        containing: str | None = None,
    ) -> list[InboxItem]:
        """The inbox, newest first (``first``: these statuses before the others); a list shows
        contact details: who saw which is on record."""
        if actor.organization != self.ctx.organization:
            return []  # this bridge's inbox holds only its own organization's referrals
        await verify_identity(self.ctx.directory, actor)  # what a peer sees depends on the role
        entries = await self.ctx.store.inbox.list(
            statuses=list(statuses) if statuses is not None else None,
            endpoint=endpoint,
            limit=limit,
            offset=offset,
            first=first,
            containing=containing,
        )
        if entries:
            detail = {"referrals": [e.referral.id for e in entries]}
            await self.ctx.audit(actor, "view-list", "inbox", detail=detail)
        return [InboxItem.of(e, organization=self.ctx.organization) for e in entries]

    async def get(
        self, referral_id: str, *, actor: Actor, allowed: Callable[[InboxItem], None] | None = None
    ) -> InboxItem:
        """The referral, audited as a view by ``actor``. ``allowed`` runs first and raises to
        refuse, so a refused look is not recorded as a view."""
        if actor.organization == self.ctx.organization:
            await verify_identity(self.ctx.directory, actor)
        entry = await self.ctx.store.inbox.get(referral_id)
        item = InboxItem.of(entry, organization=self.ctx.organization)
        if allowed is not None:
            allowed(item)
        await self.ctx.audit(actor, "view", referral_id)
        return item

    async def act(
        self,
        referral_id: str,
        action: str | ReferralAction,
        *,
        actor: Actor,
        reason: str | None = None,
        outputs: Sequence[str] = (),
        at: datetime | None = None,
    ) -> InboxItem:
        """Move the referral's Task at its EHR, guarded by If-Match.

        On a version conflict (someone changed the Task meanwhile) the Task is read again and the
        action re-applied if the state machine still allows it; otherwise StateTransitionError.
        """
        act = parse_action(action) if isinstance(action, str) else action
        await verify_identity(self.ctx.directory, actor)  # the token's role is the directory's
        when = at or self.ctx.clock()
        referral = (await self.ctx.store.inbox.get(referral_id)).referral
        # fail fast on what we already know; checked again on the Task as the EHR has it
        target = check_action(referral.status, act, reason=reason, outputs=outputs)
        await self._move_task(referral, act, reason=reason, outputs=outputs, at=when)
        fetched = await self.inbound.fetch_task(referral.endpoint, referral.task_id)
        now = self.ctx.clock()
        if act is ReferralAction.ACCEPT and actor.practitioner_id is not None:
            await self.ctx.store.inbox.assign(referral_id, actor.practitioner_id, now=now)
        detail = {
            "task": f"Task/{referral.task_id}",
            "status": target.value,
            "outputs": list(outputs),
            "refreshed": fetched,
        }
        await self.ctx.audit(actor, f"referral.{act.value}", referral_id, detail=detail, at=now)
        self.ctx.events.referral_action(referral.endpoint, act.value)
        log.info(
            "referral %s: %s (Task/%s now %s)",
            referral_id,
            act.value,
            referral.task_id,
            target.value,
            extra={"referral_id": referral_id, "endpoint": referral.endpoint, "event": act.value},
        )
        return InboxItem.of(await self.ctx.store.inbox.get(referral_id), organization=self.ctx.organization)

    async def record_delivery(self, item: OutboxItem, result: Mapping[str, Any]) -> None:
        """A session for a referral was delivered: its Task at the EHR lists the service now (as
        ``output``, BSeR 5.1.4 Event Completed) rather than only when the referral is completed.
        Only while the referral is in progress; a failure here leaves the delivery delivered."""
        payload = OutboxPayload.read(item.payload)
        referral_id = payload.encounter.referral_id
        if payload.note is not None or referral_id is None:
            return
        written = [f"{w['type']}/{w['id']}" for w in result.get("written", [])]
        outputs = [r for r in written if r.startswith("Procedure/")] or [
            r for r in written if r.startswith("Encounter/")
        ]
        if not outputs:
            return
        try:
            referral = (await self.ctx.store.inbox.get(referral_id)).referral
            client = self.ctx.clients[referral.endpoint]
            for _ in range(CONFLICT_ATTEMPTS):
                task = await client.read_raw(f"Task/{referral.task_id}")
                if task.get("status") != ReferralStatus.IN_PROGRESS.value:
                    return
                updated = task_with_status(
                    task,
                    ReferralStatus.IN_PROGRESS,
                    now=self.ctx.clock(),
                    business_status="5.1.4",
                    outputs=outputs,
                )
                version = str((task.get("meta") or {}).get("versionId") or "")
                try:
                    await client.update(updated, if_match=version or None)
                    break
                except FhirRequestError as exc:
                    if exc.status != 412:
                        raise
            await self.inbound.fetch_task(referral.endpoint, referral.task_id)
        except BridgeError as exc:
            log.warning("referral %s: the Task's outputs were not updated: [%s]", referral_id, exc.code)

    async def _move_task(
        self,
        referral: Referral,
        act: ReferralAction,
        *,
        reason: str | None,
        outputs: Sequence[str],
        at: datetime,
    ) -> None:
        client = self.ctx.clients.get(referral.endpoint)
        if client is None:
            raise InputError("referral.endpoint", "the referral's endpoint is no longer configured")
        target = TARGET[act]
        caps = await client.capabilities()
        if not caps.can_update("Task"):
            # as `bridge check` says: the EHR does not take Task updates, so the action cannot go back
            reason_text = caps.why_not("Task", "update")
            raise UnsupportedError(
                f"{referral.endpoint}: the referral cannot be moved at the EHR: {reason_text}",
                endpoint=referral.endpoint,
            )
        for _ in range(CONFLICT_ATTEMPTS):
            task = await client.read_raw(f"Task/{referral.task_id}")
            current = ReferralStatus(str(task.get("status")))
            if current is target and act is not ReferralAction.COMPLETE:
                return  # already there (our earlier attempt landed, or someone did the same)
            check_action(current, act, reason=reason, outputs=outputs)
            updated = task_with_status(task, target, now=at, reason=reason, outputs=outputs)
            version = str((task.get("meta") or {}).get("versionId") or "")
            try:
                await client.update(updated, if_match=version or None)
                return
            except FhirHttpError as exc:
                why = refusal(exc)
                if why is not None:
                    client.learn("Task", "update", False, why)
                    raise UnsupportedError(
                        f"{referral.endpoint}: the referral cannot be moved at the EHR: {why}",
                        endpoint=referral.endpoint,
                    ) from exc
                if not isinstance(exc, FhirRequestError) or exc.status != 412:
                    raise
                # changed under us: read again and re-apply if still valid
        raise StateTransitionError(referral.status.value, target.value, "the Task kept changing at the EHR")
