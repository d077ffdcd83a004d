"""Peer Bridge: peer-support work into clinic EHRs as FHIR R4, clinical referrals back to peers."""

__version__ = "0.1.0"
