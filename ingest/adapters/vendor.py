"""One record per vendor: its path, how it is verified, decoded and mapped, and its secret.

Each adapter module declares its `Vendor` and `registry.VENDORS` lists them, so a new vendor is one
file plus one row: the webhook routes are generated from the records, replay dispatches by them.
Everything here is pure (bytes and mappings in, values out): the route shell hands in a `Delivery`
and turns a `Verdict` or a `PayloadError` into its HTTP answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from services.sources import SourceSettings

from .. import jsonsafe
from ..signatures import Verdict, check_token
from .base import JsonObject, Mapped, PayloadError
from .redact import redact


@dataclass(frozen=True)
class Delivery:
    """One webhook request as the vendor's functions see it, with no web framework type."""

    method: str
    headers: Mapping[str, str]  # case-insensitive names, as the server gives them
    body: bytes
    url: str  # the URL the vendor signed: the configured public URL with path and query
    query: Mapping[str, str]
    now: datetime
    options: SourceSettings


@dataclass(frozen=True)
class Decoded:
    """The payload kept on the raw topic and mapped, and the query the mapping may read."""

    payload: Any
    query: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Route:
    """One HTTP method of a vendor's path; `name` is the OpenAPI operation's name."""

    method: str
    name: str
    summary: str


Verify = Callable[[str, Delivery], Verdict]
Decode = Callable[[Delivery], Decoded]
Map = Callable[[Any, datetime, SourceSettings, Mapping[str, str] | None], Mapped]
Keep = Callable[[Any, bytes], Any]
# The vendor's own answer (status, JSON body) in place of ours, from the payload and our answer.
Answer = Callable[[Any, int, bytes, datetime], tuple[int, JsonObject] | None]


@dataclass(frozen=True)
class Vendor:
    """Everything the ingest knows about one source; `source` names it on the raw topic."""

    source: str
    path: str
    routes: tuple[Route, ...]
    secret: str  # the SourceSettings field holding its secret (CCPULSE_SOURCES__<NAME>)
    signature_header: str  # named in a 401
    verify: Verify  # (secret, delivery) -> verdict; called only when the secret is set
    decode: Decode  # raises PayloadError (400, or its own status) naming what is malformed
    map: Map  # (payload, received_at, options, query) -> events; raises PayloadError
    keep: Keep = redact  # the payload as kept on the raw topic, personal values hashed
    answer: Answer | None = None


class UnsupportedMediaType(PayloadError):
    """A body in a framing the vendor does not use (415)."""

    status = 415
    reason = "body"


def decode_json(delivery: Delivery) -> Decoded:
    return Decoded(json_of(delivery.body))


def json_of(body: bytes) -> Any:
    try:
        return jsonsafe.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PayloadError("body", f"is not UTF-8 (byte {exc.start})") from exc
    except jsonsafe.JsonRefused as exc:
        raise PayloadError(exc.field, exc.message) from exc


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError("body", "is not a form-encoded body") from exc


def verify_bearer(secret: str, delivery: Delivery) -> Verdict:
    """A shared token in `Authorization` (with or without `Bearer `)."""
    return check_token(secret, delivery.headers.get("authorization"))
