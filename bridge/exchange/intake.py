"""What the inbound sync (:mod:`bridge.exchange.inbound`) needs from the rest of the exchange: the
peer organization's reference at each EHR (what referral Tasks are owned by, created there when
missing) and the minimum-necessary reduction applied to everything it fetches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bridge.domain import Referral
from bridge.exchange.context import ExchangeContext
from bridge.mappers import MappingContext, organization_to_fhir, referral_from_fhir


class Intake:
    def __init__(self, ctx: ExchangeContext) -> None:
        self.ctx = ctx
        self._org_refs: dict[str, str] = {}

    async def organization_ref(self, endpoint: str) -> str:
        """``Organization/<id>`` of the peer organization at ``endpoint`` (created when missing)."""
        if endpoint in self._org_refs:
            return self._org_refs[endpoint]
        org = self.ctx.settings.organization
        mapping = MappingContext.from_organization(org, endpoint=endpoint, now=self.ctx.clock())  # no patient
        ident = mapping.identifier("organization", org.id)
        result = await self.ctx.clients[endpoint].create_if_none_exist(
            organization_to_fhir(mapping), {"identifier": f"{ident['system']}|{ident['value']}"}
        )
        ref = f"Organization/{result.id}"
        self._org_refs[endpoint] = ref
        return ref

    def reduce_referral(
        self,
        task: Mapping[str, Any],
        service_request: Mapping[str, Any],
        patient: Mapping[str, Any] | None,
        endpoint: str,
        supporting: Sequence[Mapping[str, Any]] = (),
    ) -> Referral:
        """Minimum necessary first (the policy's allow-list), then the peer-side record."""
        view = self.ctx.policy.peer_view(
            task=task, service_request=service_request, patient=patient, supporting=supporting
        )
        return referral_from_fhir(
            view["task"], view["service_request"], view["patient"], endpoint, supporting=view["supporting"]
        )

    def supporting_references(
        self, task: Mapping[str, Any], service_request: Mapping[str, Any]
    ) -> Sequence[str]:
        """What the inbound sync may read beside a referral: only references the peer view keeps."""
        policy = self.ctx.policy
        return policy.fetchable_references(policy.peer_view(task=task, service_request=service_request))
