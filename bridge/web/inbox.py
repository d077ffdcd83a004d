"""The peer inbox page ``/inbox`` (server-rendered HTML)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the inbox routes."""
