"""Every vendor record is complete, its verifier refuses and accepts, and routes are its paths."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from pydantic import SecretStr

from ingest import webhooks
from ingest.adapters import registry as reg
from ingest.adapters.vendor import Delivery, Vendor
from ingest.app import create_app
from ingest.signatures import Verdict, chatwoot_signature, twilio_signature, zendesk_signature
from services.settings import Settings
from services.sources import SourceSettings
from tests.clock import clock

SECRET = "s3cret"
URL = "https://cc.example.com/webhooks/x?queue=sales"
BODY = b'{"id": 1}'
OPTIONAL = {"answer"}  # the only field a record may leave out


def _now() -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


def _stamp() -> str:
    return str(int(clock.now()))


# How each source signs a request: the headers that make `BODY` at `URL` verify with `SECRET`.
SIGNED: dict[str, Callable[[], dict[str, str]]] = {
    reg.TWILIO_VOICE: lambda: {"x-twilio-signature": twilio_signature(SECRET, URL, [])},
    reg.TWILIO_TASKROUTER: lambda: {"x-twilio-signature": twilio_signature(SECRET, URL, [])},
    reg.AMAZON_CONNECT: lambda: {"x-amz-firehose-access-key": SECRET},
    reg.CHATWOOT: lambda: {
        "x-chatwoot-timestamp": _stamp(),
        "x-chatwoot-signature": chatwoot_signature(SECRET, _stamp(), BODY),
    },
    reg.ZENDESK: lambda: {
        "x-zendesk-webhook-signature-timestamp": _stamp(),
        "x-zendesk-webhook-signature": zendesk_signature(SECRET, _stamp(), BODY),
    },
    reg.CLOUDEVENTS: lambda: {"authorization": f"Bearer {SECRET}"},
    reg.ASTERISK: lambda: {"authorization": f"Bearer {SECRET}"},
}


def _delivery(headers: dict[str, str]) -> Delivery:
    content = {"content-type": "application/json"}
    return Delivery("POST", content | headers, BODY, URL, {}, _now(), SourceSettings())


def test_every_source_has_exactly_one_record() -> None:
    sources = [v.source for v in reg.VENDORS]
    assert len(set(sources)) == len(sources) and all(sources)
    assert set(SIGNED) == set(sources)  # a new vendor adds its signing row here
    paths = [v.path for v in reg.VENDORS]
    assert len(set(paths)) == len(paths)


@pytest.mark.parametrize("vendor", reg.VENDORS, ids=lambda v: v.source)
def test_record_is_complete(vendor: Vendor) -> None:
    for item in dataclasses.fields(vendor):
        if item.name not in OPTIONAL:
            assert getattr(vendor, item.name), f"{vendor.source}: {item.name} is empty"
    for name in ("verify", "decode", "map", "keep"):
        assert callable(getattr(vendor, name)), f"{vendor.source}: {name}"
    assert vendor.path.startswith("/")
    assert {r.method for r in vendor.routes} <= {"GET", "POST"}
    assert SourceSettings.model_fields[vendor.secret].annotation == SecretStr | None


@pytest.mark.parametrize("vendor", reg.VENDORS, ids=lambda v: v.source)
def test_verifier_refuses_unsigned_and_wrongly_signed(vendor: Vendor) -> None:
    assert vendor.verify(SECRET, _delivery({})) is Verdict.MISSING
    assert vendor.verify("another secret", _delivery(SIGNED[vendor.source]())) is Verdict.INVALID


@pytest.mark.parametrize("vendor", reg.VENDORS, ids=lambda v: v.source)
def test_verifier_accepts_the_vendors_signature(vendor: Vendor) -> None:
    assert vendor.verify(SECRET, _delivery(SIGNED[vendor.source]())) is Verdict.OK


def _declared() -> set[tuple[str, str, str]]:
    return {(r.method, v.path, r.summary) for v in reg.VENDORS for r in v.routes}


def test_webhook_routes_are_exactly_the_records_paths() -> None:
    served = {
        (method, r.path, r.summary or "")
        for r in webhooks.router.routes
        if isinstance(r, APIRoute)
        for method in r.methods or ()
    }
    assert served == _declared()


def test_the_apps_webhook_operations_are_exactly_the_records() -> None:
    paths = create_app(Settings()).openapi()["paths"]
    documented = {
        (method.upper(), path, operation["summary"])
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "webhooks" in operation.get("tags", ())
    }
    assert documented == _declared()


DOCS = Path(__file__).resolve().parents[3] / "docs" / "adapters.md"
PATH = re.compile(r"`(?:POST |GET )?(/(?:webhooks|v1)/[\w/-]+)`")


def test_records_serve_the_documented_urls_and_signature_headers() -> None:
    """The table in docs/adapters.md is what vendors are configured with."""
    documented: dict[str, tuple[set[str], str]] = {}
    for row in DOCS.read_text().splitlines():
        found = PATH.search(row) if row.startswith("|") else None
        if found:
            header = row.rstrip(" |").rsplit("|", 1)[1].strip()
            documented[found[1]] = (set(re.findall(r"`(POST|GET)\b", row)), header)
    assert set(documented) == {v.path for v in reg.VENDORS}
    for vendor in reg.VENDORS:
        methods, header = documented[vendor.path]
        assert methods == {r.method for r in vendor.routes}, vendor.path
        assert header in ("shared token", f"`{vendor.signature_header}`"), vendor.path
