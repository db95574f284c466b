"""The api's OpenAPI document: error answers as problem+json, and the websocket's messages.

FastAPI builds the paths, the response models and the security schemes (from `auth.require`);
this adds what it cannot see: the messages of `WS /ws/wallboard` (OpenAPI has no websockets, so
they are component schemas the web's generated types can name) and the problem media type.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from services import problems

from .documents import WallboardMessage

REF = "#/components/schemas/{model}"


def install(app: FastAPI) -> None:
    """Replace `app.openapi` by the completed document (built once, as FastAPI does)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=app.description
            )
            _add_messages(schema)
            app.openapi_schema = problems.problem_media(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_messages(schema: dict[str, Any]) -> None:
    message = TypeAdapter(WallboardMessage).json_schema(mode="serialization", ref_template=REF)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in message.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components["WallboardMessage"] = message
