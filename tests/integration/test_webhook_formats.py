"""Formats the vendors do send: Twilio callbacks with method GET, Firehose records holding
indented (multi-line) JSON. Through the real ingest app, signed as the vendors sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlencode

from tests.clock import clock
from tests.integration.test_webhooks import make_client
from tests.unit.test_adapters_amazon_connect import CTR
from tests.unit.test_adapters_twilio import STATUS_CALLBACK


def _twilio_get_signature(token: str, url: str) -> str:
    """Twilio's rule for GET: HMAC-SHA1 over the full URL, query string included, nothing else."""
    digest = hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


async def test_twilio_status_callback_with_method_get() -> None:
    client, publisher = make_client()
    query = urlencode({**STATUS_CALLBACK, "CallSid": "CAget1"})
    url = f"http://testserver/webhooks/twilio/voice?{query}&stage=menu"
    signature = _twilio_get_signature("twilio-token", url)
    async with client:
        answer = await client.get(url, headers={"x-twilio-signature": signature})
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == 4  # offered, IVR, completed, end-of-call report
        forged = await client.get(url + "x", headers={"x-twilio-signature": signature})
        assert forged.status_code == 401
    events = publisher.events()
    assert {e["contact"] for e in events} == {"twilio:CAget1"}
    assert any(e.get("stage") == "menu" for e in events)  # the URL's own `stage` still applies


def _firehose(texts: list[str]) -> bytes:
    records = [{"data": base64.b64encode(t.encode()).decode()} for t in texts]
    body = {"requestId": "req-indented", "timestamp": int(clock.now() * 1000), "records": records}
    return json.dumps(body).encode()


async def test_firehose_records_with_indented_json_are_accepted() -> None:
    """One record pretty-printed over many lines, one holding two documents back to back."""
    other = {**CTR, "ContactId": "22222222-2222-2222-2222-222222222222"}
    texts = [json.dumps(CTR, indent=2), json.dumps(other, indent=4) + json.dumps(CTR)]
    client, publisher = make_client()
    headers = {"content-type": "application/json", "x-amz-firehose-access-key": "connect-token"}
    async with client:
        answer = await client.post("/webhooks/amazon-connect", headers=headers,
                                   content=_firehose(texts))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert "errorMessage" not in answer.json()
    contacts = {e["contact"] for e in publisher.events()}
    assert contacts == {"connect:11111111-1111-1111-1111-111111111111",
                        "connect:22222222-2222-2222-2222-222222222222"}  # fmt: skip
