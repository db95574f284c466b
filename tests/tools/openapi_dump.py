"""Write the api's OpenAPI document (web/openapi.json), from `create_app`, with no server.

`make api-types` runs it, then openapi-typescript turns the document into
web/src/lib/api-types.ts; tests/unit/api/test_api_types.py fails when either is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from api.app import create_app
from services.settings import Settings

DOCUMENT = Path(__file__).resolve().parents[2] / "web" / "openapi.json"


def document() -> dict[str, Any]:
    """The schema of an app built from default settings: routes and models do not vary."""
    schema: dict[str, Any] = create_app(Settings()).openapi()
    return schema


def text() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> None:
    target = Path(argv[0]) if argv else DOCUMENT
    target.write_text(text())


if __name__ == "__main__":
    main(sys.argv[1:])
