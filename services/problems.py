"""RFC 9457 problem details: the one error shape of both apps (ingest and api).

Every error answer is `application/problem+json` with `type`, `title`, `status`, `detail` (the
human message, which starts with the field at fault where there is one) and `instance` (the
path asked), plus `errors` naming each field at fault. The same kind of fault has the same
status in both apps: a body that is not JSON 400, a field or parameter that is 422, no or a
bad credential 401, too low a role 403, unknown thing 404, a store that cannot answer 503.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
SOURCES = ("query", "path", "header", "cookie", "body")  # FastAPI's first `loc` item


class FieldProblem(BaseModel):
    """One field at fault: a parameter, a header, a body field (dotted), or `body` itself."""

    field: str
    message: str = ""
    index: int | None = Field(default=None, description="the event's position in a batch")


class Problem(BaseModel):
    """An error answer (RFC 9457). Extension members (`retry_after`) may follow."""

    type: str = "about:blank"
    title: str = Field(description="the HTTP status phrase")
    status: int
    detail: str = Field(description="what went wrong, starting with the field at fault")
    instance: str | None = Field(default=None, description="the path that was asked")
    errors: list[FieldProblem] = Field(default_factory=list)


class ProblemResponse(JSONResponse):
    """Keeps its body, so a caller that knows the path can add `instance` (see `at`)."""

    media_type = PROBLEM_JSON

    def __init__(self, body: dict[str, Any], status_code: int, headers: Mapping[str, str] | None):
        super().__init__(body, status_code=status_code, headers=headers)
        self.body_fields = body

    def at(self, instance: str) -> ProblemResponse:
        body = {**self.body_fields, "instance": instance}
        return ProblemResponse(body, self.status_code, _own_headers(self))


def _own_headers(response: JSONResponse) -> dict[str, str]:
    """The headers set by the caller (not those Starlette derives from the body)."""
    derived = {"content-length", "content-type"}
    return {k: v for k, v in response.headers.items() if k not in derived}


def at(response: Response, instance: str) -> Response:
    """`response` with `instance` when it is a problem without one; else as it is."""
    if isinstance(response, ProblemResponse) and "instance" not in response.body_fields:
        return response.at(instance)
    return response


def problem(
    status: int,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    """The error answer; `errors` rows are {field, message, index} (message: `detail`)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body["errors"] = [
        {
            "field": str(e.get("field", "")),
            "message": str(e.get("message") or detail),
            "index": e.get("index"),
        }
        for e in errors or []
    ]
    body.update(extensions)
    return ProblemResponse(body, status, headers)


def field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("query", "window")` -> `window`; `("body", "events", 0, "time")` -> `events.0.time`."""
    parts = list(loc[1:] if loc and loc[0] in SOURCES and len(loc) > 1 else loc)
    return ".".join(str(p) for p in parts) or "body"


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    field = (
        detail.partition(":")[0] if ": " in detail and " " not in detail.partition(":")[0] else None
    )
    errors = [{"field": field, "message": detail.partition(": ")[2]}] if field else []
    return problem(exc.status_code, detail, errors, instance=request.url.path, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    rows = [
        {"field": field_of(e.get("loc", ())), "message": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{r['field']}: {r['message']}" for r in rows) or "the request is invalid"
    return problem(422, detail, rows, instance=request.url.path)


def install(app: FastAPI) -> None:
    """Every HTTPException and validation error of `app` answers as a problem."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for these error statuses, each a `Problem` (see `problem_media`)."""
    return {s: {"model": Problem, "description": HTTPStatus(s).phrase} for s in statuses}


def problem_media(schema: dict[str, Any]) -> dict[str, Any]:
    """Error answers as they are sent, in place: application/problem+json (FastAPI documents a
    `model` under the route's media type), and a `Problem` where FastAPI adds its own 422."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if str(status)[0] in "45" and "application/json" in content:
                    content[PROBLEM_JSON] = {"schema": problem_ref}
                    del content["application/json"]
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
