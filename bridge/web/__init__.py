"""The bridge's HTTP service: JSON API, FHIR notification endpoint, peer inbox page."""

from __future__ import annotations

from bridge.web.app import create_app

__all__ = ["create_app"]
