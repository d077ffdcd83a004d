"""Referrals: the inbox (the peer view of a clinician's ServiceRequest + Task) and the peer's
actions on it, which move the Task at its EHR through the state machine of
:mod:`bridge.exchange.task_state`. Reads are audited as views by the caller; the practitioner who
accepts a referral is stored with it (its assignee).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from bridge.domain import Referral, ReferralStatus
from bridge.errors import FhirRequestError, InputError, StateTransitionError
from bridge.exchange.authorship import verify_identity
from bridge.exchange.context import ExchangeContext
from bridge.exchange.inbound import InboundSync
from bridge.exchange.task_state import TARGET, ReferralAction, check_action, parse_action
from bridge.exchange.views import Actor, InboxItem
from bridge.mappers import task_with_status

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
    ) -> list[InboxItem]:
        """The inbox, newest first; a list shows contact details: who saw which is on record."""
        if actor.organization != self.ctx.organization:
            return []  # this bridge's inbox holds only its own organization's referrals
        await verify_identity(self.ctx.directory, actor)  # what a peer sees depends on the role
        entries = await self.ctx.store.inbox.list(
            statuses=list(statuses) if statuses is not None else None,
            endpoint=endpoint,
            limit=limit,
            offset=offset,
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
            except FhirRequestError as exc:
                if exc.status != 412:
                    raise
                # changed under us: read again and re-apply if still valid
        raise StateTransitionError(referral.status.value, target.value, "the Task kept changing at the EHR")
