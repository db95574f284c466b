"""Signature checks against the vendors' own test vectors and documented formulas."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from ingest.signatures import (
    Verdict,
    body_sha256,
    chatwoot_signature,
    check_chatwoot,
    check_token,
    check_twilio,
    check_zendesk,
    twilio_signature,
    url_variants,
    zendesk_signature,
)

# twilio-python's request validator test vectors (tests/unit/test_request_validator.py).
TOKEN = "12345"
URI = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
BODY = b'{"property": "value", "boolean": true}'
BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"


def test_twilio_signature_vector() -> None:
    assert twilio_signature(TOKEN, URI, PARAMS.items()) == EXPECTED
    assert check_twilio(TOKEN, URI, EXPECTED, PARAMS.items()) is Verdict.OK


def test_twilio_repeated_parameters_vector() -> None:
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature(TOKEN, URI, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (URI.replace(".com", ".com:1234"), EXPECTED),  # port removed (https)
        (URI.replace(".com", ".com:1234").replace("https", "http"), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        (URI, "kvajT1Ptam85bY51eRf/AJRuM3w="),  # signed with :443 added
        (URI.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),  # signed with :80 added
    ],
)
def test_twilio_with_and_without_the_default_port(url: str, signature: str) -> None:
    assert check_twilio(TOKEN, url, signature, PARAMS.items()) is Verdict.OK


def test_twilio_json_body_is_signed_through_body_sha256() -> None:
    assert body_sha256(BODY) == BODY_HASH
    url = f"{URI}&bodySHA256={BODY_HASH}"
    assert check_twilio(TOKEN, url, "a9nBmqA0ju/hNViExpshrM61xv4=", body=BODY) is Verdict.OK
    tampered = BODY.replace(b"value", b"other")
    assert (
        check_twilio(TOKEN, url, "a9nBmqA0ju/hNViExpshrM61xv4=", body=tampered) is Verdict.INVALID
    )


def test_twilio_refusals() -> None:
    assert check_twilio(TOKEN, URI, None, PARAMS.items()) is Verdict.MISSING
    assert check_twilio(TOKEN, URI, EXPECTED, {**PARAMS, "Digits": "9"}.items()) is Verdict.INVALID
    assert check_twilio("other", URI, EXPECTED, PARAMS.items()) is Verdict.INVALID


def test_url_variants() -> None:
    assert url_variants("https://h.example:8443/p?q=1") == [
        "https://h.example:8443/p?q=1",
        "https://h.example/p?q=1",
        "https://h.example:443/p?q=1",
    ]


NOW = datetime(2024, 4, 17, 17, 18, 10, tzinfo=UTC)
SECRET = "zendesk-webhook-signing-secret"
ZD_BODY = b'{"type":"zen:event-type:ticket.created","id":"01HNXXXX-CTEXAMPLE"}'
ZD_STAMP = "2024-04-17T17:18:10Z"


def test_zendesk_formula_is_base64_hmac_sha256_of_timestamp_and_body() -> None:
    by_hand = base64.b64encode(
        hmac.new(SECRET.encode(), ZD_STAMP.encode() + ZD_BODY, hashlib.sha256).digest()
    ).decode()
    assert zendesk_signature(SECRET, ZD_STAMP, ZD_BODY) == by_hand
    assert check_zendesk(SECRET, ZD_STAMP, by_hand, ZD_BODY, NOW, 300) is Verdict.OK


@pytest.mark.parametrize(
    ("stamp", "signature", "now", "verdict"),
    [
        (ZD_STAMP, None, NOW, Verdict.MISSING),
        (None, "x", NOW, Verdict.MISSING),
        (ZD_STAMP, "AAAA", NOW, Verdict.INVALID),
        (ZD_STAMP, "sign", NOW + timedelta(seconds=301), Verdict.STALE),  # a replay
        (ZD_STAMP, "sign", NOW - timedelta(seconds=301), Verdict.STALE),  # from the future
        (ZD_STAMP, "sign", NOW + timedelta(seconds=299), Verdict.OK),
    ],
)
def test_zendesk_refusals_and_replay_window(
    stamp: str | None, signature: str | None, now: datetime, verdict: Verdict
) -> None:
    if signature == "sign":
        signature = zendesk_signature(SECRET, ZD_STAMP, ZD_BODY)
    assert check_zendesk(SECRET, stamp, signature, ZD_BODY, now, 300) is verdict


def test_chatwoot_formula_and_window() -> None:
    stamp = str(int(NOW.timestamp()))
    body = b'{"event":"message_created","id":118}'
    digest = hmac.new(b"cw-secret", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert chatwoot_signature("cw-secret", stamp, body) == f"sha256={digest}"
    assert check_chatwoot("cw-secret", stamp, f"sha256={digest}", body, NOW, 300) is Verdict.OK
    late = NOW + timedelta(minutes=10)
    assert check_chatwoot("cw-secret", stamp, f"sha256={digest}", body, late, 300) is Verdict.STALE
    assert check_chatwoot("cw-secret", stamp, "sha256=00", body, NOW, 300) is Verdict.INVALID
    assert check_chatwoot("cw-secret", None, "sha256=00", body, NOW, 300) is Verdict.MISSING


def test_tokens() -> None:
    assert check_token("s3cret", "Bearer s3cret") is Verdict.OK
    assert check_token("s3cret", "s3cret") is Verdict.OK
    assert check_token("s3cret", "Bearer nope") is Verdict.INVALID
    assert check_token("s3cret", None) is Verdict.MISSING
