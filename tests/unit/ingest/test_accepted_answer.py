"""The pre-rendered 202 of one event is what `JSONResponse` renders (ingest/state.py)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from ingest.state import accepted_one


def test_accepted_one_is_what_json_response_renders() -> None:
    rendered = JSONResponse({"accepted": 1}, status_code=202)
    ours = accepted_one()
    assert type(ours) is JSONResponse
    assert ours.status_code == rendered.status_code == 202
    assert ours.body == rendered.body == b'{"accepted":1}'
    assert ours.raw_headers == rendered.raw_headers
    assert ours.background is None and dict(ours.headers) == dict(rendered.headers)


def test_each_answer_has_its_own_header_list() -> None:
    first, second = accepted_one(), accepted_one()
    first.raw_headers.append((b"x-extra", b"1"))
    assert (b"x-extra", b"1") not in second.raw_headers
    assert (b"x-extra", b"1") not in accepted_one().raw_headers
