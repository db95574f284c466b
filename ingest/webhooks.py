"""Vendor webhook routes: each checks its signature, maps with a pure adapter, then publishes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["webhooks"])
