"""The OpenAPI documents and the web's generated types: complete, and never out of date.

web/openapi.json and web/src/lib/api-types.ts are committed (the web build type-checks against
them); regenerate both with `make api-types` when an api document changes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ingest.app import create_app as create_ingest
from services.settings import Settings
from tests.tools import openapi_dump

WEB = Path(__file__).resolve().parents[3] / "web"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"


@pytest.fixture(scope="module")
def api_schema() -> dict[str, Any]:
    return openapi_dump.document()


def test_committed_openapi_document_is_the_live_one() -> None:
    committed = (WEB / "openapi.json").read_text()
    assert committed == openapi_dump.text(), "web/openapi.json is stale: run `make api-types`"


def test_committed_web_types_are_generated_from_the_live_document(tmp_path: Path) -> None:
    assert GENERATOR.exists(), "web/node_modules lacks openapi-typescript: run `make setup`"
    document = tmp_path / "openapi.json"
    document.write_text(openapi_dump.text())
    out = tmp_path / "api-types.ts"
    subprocess.run(
        [str(GENERATOR), str(document), "-o", str(out)],
        check=True,
        cwd=WEB,
        capture_output=True,
        timeout=120,
    )
    committed = (WEB / "src" / "lib" / "api-types.ts").read_text()
    assert committed == out.read_text(), "web/src/lib/api-types.ts is stale: run `make api-types`"


def test_live_answer_has_a_schema(api_schema: dict[str, Any]) -> None:
    answer = api_schema["paths"]["/api/v1/live"]["get"]["responses"]["200"]
    ref = answer["content"]["application/json"]["schema"]["$ref"]
    live = api_schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"as_of", "from", "to", "channels", "queues", "agents"} <= set(live["required"])
    channel = live["properties"]["channels"]["additionalProperties"]["$ref"].rsplit("/", 1)[1]
    assert {"offered", "service_level", "in_queue"} <= set(
        api_schema["components"]["schemas"][channel]["properties"]
    )


def test_every_answer_has_a_schema(api_schema: dict[str, Any]) -> None:
    for path, operations in api_schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status == "204":
                    continue
                for media, content in answer["content"].items():
                    assert content.get("schema") not in (None, {}), (method, path, status, media)


def test_api_declares_its_security_schemes(api_schema: dict[str, Any]) -> None:
    schemes = api_schema["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    assert (schemes["session"]["in"], schemes["session"]["name"]) == ("cookie", "ccpulse_session")
    live = api_schema["paths"]["/api/v1/live"]["get"]
    assert {name for row in live["security"] for name in row} == {"bearer", "apiKey", "session"}


def test_errors_are_documented_as_problems(api_schema: dict[str, Any]) -> None:
    volume = api_schema["paths"]["/api/v1/volume"]["get"]["responses"]
    assert {"401", "403", "404", "422", "503"} <= set(volume)
    assert list(volume["422"]["content"]) == ["application/problem+json"]
    assert "HTTPValidationError" not in json.dumps(api_schema)


def test_ingest_documents_bodies_credentials_and_errors() -> None:
    schema = create_ingest(Settings()).openapi()
    events = schema["paths"]["/v1/events"]["post"]
    assert "application/json" in events["requestBody"]["content"]
    assert events["security"] == [{"ingestToken": []}]
    assert {"400", "401", "413", "422", "429", "503"} <= set(events["responses"])
    for path in ("/webhooks/chatwoot", "/webhooks/zendesk", "/webhooks/asterisk/queue-log"):
        operation = schema["paths"][path]["post"]
        assert operation["requestBody"]["content"] and operation["security"], path
    assert "ContactEvent" in schema["components"]["schemas"]
