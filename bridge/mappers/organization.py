"""The peer organization -> Organization (US Core Organization).

https://hl7.org/fhir/us/core/StructureDefinition-us-core-organization.html
"""

from __future__ import annotations

from typing import Any

from bridge.mappers.codes import US_CORE_ORGANIZATION
from bridge.mappers.context import MappingContext, npi_identifier, validated


def build_organization(ctx: MappingContext) -> dict[str, Any]:
    identifiers = [ctx.identifier("organization", ctx.organization_id)]
    if ctx.organization_npi:
        identifiers.append(npi_identifier(ctx.organization_npi))
    return {
        "resourceType": "Organization",
        "meta": {"profile": [US_CORE_ORGANIZATION]},
        "identifier": identifiers,
        "active": True,
        "name": ctx.organization_name,
    }


def organization_to_fhir(ctx: MappingContext) -> dict[str, Any]:
    """The peer organization from the context, as a validated Organization dict."""
    return validated(build_organization(ctx), "organization")
