"""Pure checks of vendor webhook signatures: Twilio, Zendesk, Chatwoot, and shared tokens.

Kept apart from the routes so each scheme can be tested against the vendor's own test vectors,
and so no check can touch the network. Every comparison is constant-time. Timestamped schemes
(Zendesk, Chatwoot) refuse a timestamp outside the replay window, in either direction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import parse_qsl, urlsplit, urlunsplit

DEFAULT_PORTS = {"https": 443, "http": 80}


class Verdict(StrEnum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    STALE = "stale"


def _same(expected: str, presented: str) -> bool:
    """Bytes, not str: compare_digest refuses non-ASCII str, and a header can hold anything."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), presented.encode("utf-8", "surrogatepass")
    )


# --- Twilio: base64(HMAC-SHA1(auth token, URL + sorted form keys and values)) ---


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """Keys sorted, each followed by its value; a repeated key adds each distinct value, sorted."""
    pairs = sorted(set(params))
    data = url + "".join(k + v for k, v in pairs)
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, without its port, and with the scheme's default port.

    Twilio signs the URL it requested; a proxy or a load balancer may add or drop the port, so
    Twilio's helper libraries accept all three forms, and so do we.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    creds = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    bare = urlunsplit(parts._replace(netloc=creds + host))
    port = DEFAULT_PORTS.get(parts.scheme)
    with_port = urlunsplit(parts._replace(netloc=f"{creds}{host}:{port}")) if port else bare
    return list(dict.fromkeys([url, bare, with_port]))


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def check_twilio(
    auth_token: str,
    url: str,
    signature: str | None,
    params: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> Verdict:
    """Form posts sign their parameters; JSON bodies sign the URL, whose bodySHA256 signs them."""
    if not signature:
        return Verdict.MISSING
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    signed_params = list(params)
    if "bodySHA256" in query:
        if body is None or not _same(query["bodySHA256"].lower(), body_sha256(body)):
            return Verdict.INVALID
        signed_params = []
    for candidate in url_variants(url):
        if _same(twilio_signature(auth_token, candidate, signed_params), signature):
            return Verdict.OK
    return Verdict.INVALID


# --- Zendesk: base64(HMAC-SHA256(secret, timestamp + body)), timestamp in its own header ---


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_zendesk(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    window_s: int,
) -> Verdict:
    if not signature or not timestamp:
        return Verdict.MISSING
    if not _same(zendesk_signature(secret, timestamp, body), signature):
        return Verdict.INVALID
    return _fresh(timestamp, now, window_s)


# --- Chatwoot: "sha256=" + hex(HMAC-SHA256(secret, "{timestamp}.{body}")) ---


def chatwoot_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def check_chatwoot(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    window_s: int,
) -> Verdict:
    if not signature or not timestamp:
        return Verdict.MISSING
    if not _same(chatwoot_signature(secret, timestamp, body), signature.strip().lower()):
        return Verdict.INVALID
    return _fresh(timestamp, now, window_s)


# --- shared tokens (Amazon Connect via Firehose / API destinations, Asterisk follower, CloudEvents)


def check_token(expected: str, presented: str | None) -> Verdict:
    if not presented:
        return Verdict.MISSING
    token = presented.removeprefix("Bearer ").strip()
    return Verdict.OK if _same(expected, token) else Verdict.INVALID


def _fresh(timestamp: str, now: datetime, window_s: int) -> Verdict:
    """A signed timestamp outside the window is a replay (or a clock too far off to trust)."""
    when = parse_timestamp(timestamp)
    if when is None or abs((now - when).total_seconds()) > window_s:
        return Verdict.STALE
    return Verdict.OK


def parse_timestamp(value: str) -> datetime | None:
    """Epoch seconds (Chatwoot) or ISO 8601 (Zendesk, `2024-04-17T17:18:10Z`)."""
    text = value.strip()
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
