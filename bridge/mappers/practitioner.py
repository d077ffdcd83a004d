"""PeerWorker -> Practitioner (US Core Practitioner).

https://hl7.org/fhir/us/core/StructureDefinition-us-core-practitioner.html
The peer's credential (as signed on notes) is the qualification text; NUCC 175T00000X
"Peer Specialist" is its coding.
"""

from __future__ import annotations

from typing import Any

from bridge.domain import PeerWorker
from bridge.mappers.codes import NUCC_TAXONOMY, PEER_SPECIALIST_TAXONOMY, US_CORE_PRACTITIONER
from bridge.mappers.context import MappingContext, npi_identifier, validated


def build_practitioner(ctx: MappingContext, peer: PeerWorker) -> dict[str, Any]:
    """The Practitioner dict, not yet validated (the Bundle builder validates once)."""
    identifiers = [ctx.identifier("practitioner", peer.id)]
    if peer.npi:
        identifiers.append(npi_identifier(peer.npi))
    return {
        "resourceType": "Practitioner",
        "meta": {"profile": [US_CORE_PRACTITIONER]},
        "identifier": identifiers,
        "active": True,
        "name": [{"family": peer.name.family, "given": [peer.name.given]}],
        "qualification": [
            {
                "code": {
                    "coding": [
                        {
                            "system": NUCC_TAXONOMY,
                            "code": PEER_SPECIALIST_TAXONOMY[0],
                            "display": PEER_SPECIALIST_TAXONOMY[1],
                        }
                    ],
                    "text": peer.credential,
                }
            }
        ],
    }


def practitioner_to_fhir(ctx: MappingContext, peer: PeerWorker) -> dict[str, Any]:
    """A peer worker (or supervisor) as a validated US Core Practitioner dict."""
    return validated(build_practitioner(ctx, peer), "practitioner")
