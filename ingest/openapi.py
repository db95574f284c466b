"""The ingest's OpenAPI document: request bodies, how each source proves itself, every answer.

The routes read their bodies raw (size limits, signatures over the exact bytes, batches checked
whole), so FastAPI sees no body, no credential and no error answer: one row per route says them
here, and `install` writes them into the document FastAPI builds.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from services import problems
from services.contract import ContactEvent

REF = "#/components/schemas/{model}"
EVENT = {"$ref": "#/components/schemas/ContactEvent"}
ERRORS = (400, 401, 408, 413, 422, 429, 503)  # body, credential, slow, size, fields, rate, broker


class Accepted(BaseModel):
    """The broker has every accepted event; events too old for live figures are counted apart."""

    accepted: int
    ignored: int | None = Field(default=None, description="webhooks: events of no use, skipped")
    too_old: int | None = None
    too_old_detail: str | None = None


SCHEMES: dict[str, dict[str, Any]] = {
    "ingestToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from CCPULSE_INGEST_TOKENS",
    },
    "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature"},
    "amazonConnectToken": {"type": "apiKey", "in": "header", "name": "X-Amz-Firehose-Access-Key"},
    "chatwootSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Chatwoot-Signature",
        "description": "HMAC-SHA256 of `timestamp.body`, with X-Chatwoot-Timestamp",
    },
    "zendeskSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Zendesk-Webhook-Signature",
        "description": "base64 HMAC-SHA256 of timestamp + body, with its -Timestamp header",
    },
    "sourceToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The source's token: CCPULSE_SOURCES__{CLOUDEVENTS,ASTERISK}_TOKEN",
    },
}

JSON_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
FORM = {"application/x-www-form-urlencoded": {"schema": JSON_OBJECT}}


@dataclass(frozen=True)
class Route:
    scheme: str
    content: dict[str, Any]  # the request body's media types; empty: none (GET)


ROUTES: dict[tuple[str, str], Route] = {
    ("/v1/events", "post"): Route(
        "ingestToken",
        {
            "application/json": {"schema": {"oneOf": [EVENT, {"type": "array", "items": EVENT}]}},
            "application/x-ndjson": {"schema": {"type": "string", "description": "events"}},
        },
    ),
    ("/webhooks/twilio/voice", "post"): Route("twilioSignature", FORM),
    ("/webhooks/twilio/voice", "get"): Route("twilioSignature", {}),
    ("/webhooks/twilio/taskrouter", "post"): Route("twilioSignature", FORM),
    ("/webhooks/amazon-connect", "post"): Route(
        "amazonConnectToken", {"application/json": {"schema": JSON_OBJECT}}
    ),
    ("/webhooks/chatwoot", "post"): Route(
        "chatwootSignature", {"application/json": {"schema": JSON_OBJECT}}
    ),
    ("/webhooks/zendesk", "post"): Route(
        "zendeskSignature", {"application/json": {"schema": JSON_OBJECT}}
    ),
    ("/v1/cloudevents", "post"): Route(
        "sourceToken",
        {
            "application/cloudevents+json": {"schema": JSON_OBJECT},
            "application/cloudevents-batch+json": {"schema": {"type": "array"}},
            "application/json": {"schema": EVENT, "description": "binary mode: ce-* headers"},
        },
    ),
    ("/webhooks/asterisk/queue-log", "post"): Route(
        "sourceToken", {"text/plain": {"schema": {"type": "string"}}}
    ),
}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            complete(schema)
            app.openapi_schema = problems.problem_media(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (ContactEvent, Accepted, problems.Problem):
        found = model.model_json_schema(ref_template=REF)
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    components["securitySchemes"] = SCHEMES
    for (path, method), route in ROUTES.items():
        operation = schema["paths"][path][method]
        operation["security"] = [{route.scheme: []}]
        if route.content:
            operation["requestBody"] = {"required": True, "content": route.content}
        operation["responses"] = _responses(path)


def _responses(path: str) -> dict[str, Any]:
    ok = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}}
    answers: dict[str, Any] = {"202": {"description": "Accepted", **ok}}
    if path != "/v1/events":
        answers["200"] = {"description": "Nothing to publish (events of no use)", **ok}
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for status in ERRORS:
        answers[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {problems.PROBLEM_JSON: problem},
        }
    return answers
