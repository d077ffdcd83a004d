"""What every mapper needs besides the record: who we are, where it goes, and the time.

Also the shared helpers: stable identifiers (the same record always yields the same identifier and
the same ``urn:uuid``), FHIR date-time formatting, and validation through ``fhir.resources.R4B`` with
errors translated to :class:`bridge.errors.MappingError` naming the field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Protocol
from urllib.parse import quote

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from bridge.domain import Participant
from bridge.errors import MappingError
from bridge.mappers.codes import NPI

_URI = re.compile(r"^(urn:(oid|uuid):[0-9A-Za-z.\-]+|https?://[^\s|?#]+)$")
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_PATIENT_REF = re.compile(
    r"^(Patient/[A-Za-z0-9\-.]{1,64}|Patient\?identifier=\S+|https?://\S+/Patient/[A-Za-z0-9\-.]{1,64})$"
)


class OrganizationLike(Protocol):
    """The organization part of the settings (``bridge.config.OrganizationSettings`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def identifier_system(self) -> str: ...
    @property
    def npi(self) -> str | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingContext:
    """Everything outside the record that a mapping depends on.

    ``identifier_system`` is the URI under which the bridge mints identifiers; each kind of record
    gets its own sub-system (``{identifier_system}/encounter`` ...), so record ids never collide
    across kinds. ``patient_reference`` is the patient at ``endpoint``: ``Patient/123`` (resolved
    beforehand) or a conditional ``Patient?identifier=system|value`` (resolved by the server inside
    the transaction; see :func:`patient_reference_for`); it may be None for what concerns no
    patient (Organization, Practitioner), and mapping a patient's record then raises MappingError.
    ``now`` is passed in: mappers never read the clock.
    """

    organization_id: str
    organization_name: str
    identifier_system: str
    endpoint: str
    now: datetime
    patient_reference: str | None = None
    organization_npi: str | None = None

    def __post_init__(self) -> None:
        if not _FHIR_ID.match(self.organization_id):
            raise MappingError("organization.id", "must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")
        if not self.organization_name.strip():
            raise MappingError("organization.name", "must not be empty")
        if not _URI.match(self.identifier_system) or self.identifier_system.endswith("/"):
            raise MappingError(
                "organization.identifier_system",
                "must be an absolute URI without a trailing '/', '|', '?' or '#'",
            )
        if self.patient_reference is not None and not _PATIENT_REF.match(self.patient_reference):
            raise MappingError(
                "patient_reference", "must be Patient/<id>, an absolute Patient URL or Patient?identifier=…"
            )
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise MappingError("now", "must carry a timezone")
        if self.organization_npi is not None and not re.fullmatch(r"\d{10}", self.organization_npi):
            raise MappingError("organization.npi", "must be 10 digits")

    @classmethod
    def from_organization(
        cls, org: OrganizationLike, *, endpoint: str, now: datetime, patient_reference: str | None = None
    ) -> MappingContext:
        """Build a context from the ``[organization]`` settings."""
        return cls(
            organization_id=org.id,
            organization_name=org.name,
            identifier_system=org.identifier_system,
            endpoint=endpoint,
            patient_reference=patient_reference,
            now=now,
            organization_npi=org.npi,
        )

    def patient(self) -> dict[str, str]:
        """The Reference to the patient; MappingError when the context has none."""
        if self.patient_reference is None:
            raise MappingError("patient_reference", "required to map a participant's record")
        return {"reference": self.patient_reference}

    # --- stable identifiers ------------------------------------------------------------------

    def identifier(self, kind: str, record_id: str) -> dict[str, str]:
        """The stable business identifier of record ``record_id`` of ``kind`` (e.g. ``encounter``)."""
        if not _FHIR_ID.match(record_id):
            raise MappingError(f"{kind}.id", "must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")
        return {"system": f"{self.identifier_system}/{kind}", "value": record_id}

    def search_by_identifier(self, kind: str, record_id: str) -> str:
        """``identifier=system|value`` for ``ifNoneExist`` and conditional references."""
        return identifier_query(self.identifier(kind, record_id))

    def full_url(self, kind: str, record_id: str) -> str:
        """The deterministic ``urn:uuid`` of a record inside a transaction Bundle."""
        ident = self.identifier(kind, record_id)
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, ident['system'] + '|' + ident['value'])}"

    # --- references when a mapper is used on its own (outside a Bundle) ------------------------

    def practitioner_reference(self, peer_id: str) -> str:
        return f"Practitioner?{self.search_by_identifier('practitioner', peer_id)}"

    def organization_reference(self) -> str:
        return f"Organization?{self.search_by_identifier('organization', self.organization_id)}"


def token_query(param: str, system: str, code: str) -> str:
    """``param=system|code`` with the URL-reserved characters of both parts escaped."""
    return f"{param}={quote(system, safe=':/')}%7C{quote(code, safe='')}"


def identifier_query(ident: Mapping[str, str]) -> str:
    """``identifier=system|value`` for an Identifier dict."""
    return token_query("identifier", ident["system"], ident["value"])


def patient_reference_for(participant: Participant, endpoint: str) -> str:
    """A conditional reference to the participant's Patient at ``endpoint`` (by their identifier).

    Raises InputError naming ``participant.identifiers`` when there is no identifier for it.
    """
    return f"Patient?{identifier_query(participant.identifier_for(endpoint).model_dump())}"


def npi_identifier(npi: str) -> dict[str, str]:
    return {"system": NPI, "value": npi}


def fhir_datetime(value: datetime, field: str) -> str:
    """A FHIR ``dateTime``/``instant`` to the second, keeping the record's own offset (a local
    14:00 stays 14:00)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise MappingError(field, "must carry a timezone")
    return value.replace(microsecond=0).isoformat()


def reference(ref: str, display: str | None = None) -> dict[str, str]:
    out = {"reference": ref}
    if display:
        out["display"] = display
    return out


@cache
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def validated(resource: dict[str, Any], what: str) -> dict[str, Any]:
    """Check ``resource`` against its R4B model; a failure is a MappingError naming the element.

    The dict is returned as built: serialising through the models costs far more than validating
    (see the shared design notes), and the output must be exactly what the mapper built.
    """
    try:
        _model(resource["resourceType"]).model_validate(resource)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        # the message only, never the input value: it may be PHI
        raise MappingError(f"{what}.{loc}" if loc else what, str(err["msg"])) from exc
    return resource


def validated_bundle(bundle: dict[str, Any], what: str = "bundle") -> dict[str, Any]:
    """Validate a Bundle: its skeleton once, then each entry's resource with its own model.

    Same coverage as validating the whole Bundle in one call, about a third cheaper: the
    Bundle model looks each entry's resource class up by import string on every call.
    """
    skeleton = {**bundle, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in bundle["entry"]]}
    validated(skeleton, what)
    for i, entry in enumerate(bundle["entry"]):
        if "resource" in entry:
            validated(entry["resource"], f"{what}.entry.{i}.resource")
    return bundle
