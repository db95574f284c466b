"""Signing in as a person does: the wallboard sends an unknown browser to a form, a wrong key
reads as words, the right one comes back to the wallboard (real Chromium, real api)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LiveApi
from .helpers import LIVE

pytestmark = pytest.mark.browser


def test_the_wallboard_sends_a_stranger_to_sign_in_and_back(
    live_api: LiveApi, page_factory: Any
) -> None:
    page = page_factory(1366, 768)
    page.goto(f"{live_api.url}/?window=15m", wait_until="domcontentloaded")
    page.wait_for_url("**/login?next=*", timeout=15_000)
    page.fill("#key", "ccp_" + "w" * 40)
    page.click("button[type=submit]")
    page.wait_for_selector(".error[role=alert]", timeout=10_000)
    assert "unknown or was revoked" in (page.text_content(".error") or "")
    assert "detail" not in (page.content() or "")
    page.fill("#key", live_api.viewer_key)
    page.click("button[type=submit]")
    page.wait_for_selector(LIVE, timeout=15_000)
    assert page.url.endswith("/?window=15m")
    assert page.errors == [] or all("401" in e for e in page.errors), page.errors
