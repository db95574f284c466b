"""Fuzzing the real processes over HTTP, access control on: never a 5xx, every refusal says why.

Two sources of input: schemathesis, from the OpenAPI schemas the ingest and the api publish
(valid and invalid requests for every operation, with an admin key or an ingest token), and
hypothesis, for what the schemas cannot describe: raw bodies of hostile events on `/v1/events` and
on every vendor webhook, correctly signed so they reach the parsers (wrong types, huge strings,
far-future and far-past times, unknown fields, invalid UTF-8, lone surrogates, deep nesting),
and raw requests with hostile Content-Length and Transfer-Encoding headers (the HTTP server's own
refusals must name their reason too). Afterwards a valid event must still reach `/api/v1/live`:
the consumer is not stuck.

`CCPULSE_FUZZ_EXAMPLES` sets the total number of generated inputs (a few thousand by default;
`make chaos` runs 100,000).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ingest import signatures as sig
from simulator.scenario import iso
from tests.clock import clock
from tests.harness import Pipeline, RawHttp, wait_until

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("CCPULSE_FUZZ_EXAMPLES", "3000"))
ANSWER_WITHIN_S = 10
ADMIN = "ccp_fuzz_admin_key_0123456789"
TOKEN = "fuzz-ingest-token-0123456789"
SECRETS = {
    name: f"fuzz-{name}-secret"
    for name in (
        "twilio_auth_token",
        "chatwoot_secret",
        "zendesk_secret",
        "amazon_connect_token",
        "asterisk_token",
        "cloudevents_token",
    )
}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One secured pipeline for the module (its own broker and Redis, stopped by PID)."""
    from ccpulse.stack import EmbeddedBroker, EmbeddedRedis
    from services.keys import ALL_TOPICS

    tmp = tmp_path_factory.mktemp("fuzz")
    env = {
        "CCPULSE_AUTH": "on",
        "CCPULSE_ADMIN_KEY": ADMIN,
        "CCPULSE_INGEST_TOKENS": json.dumps([TOKEN]),
        "CCPULSE_INGEST_RATE_PER_SECOND": "100000",
        "CCPULSE_INGEST_BURST": "100000",
        **{f"CCPULSE_SOURCES__{k.upper()}": v for k, v in SECRETS.items()},
    }
    with EmbeddedBroker(tmp / "broker") as broker, EmbeddedRedis(tmp / "redis") as redis_server:
        broker.create_topics(ALL_TOPICS, 6)
        pipeline = Pipeline(broker.bootstrap, redis_server.url, tmp, extra_env=env)
        try:
            pipeline.start()
            yield pipeline
        finally:
            pipeline.stop()


class Tally:
    """Answers by status; the first problems found, to report them all at once."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.problems: list[str] = []

    def check(self, what: str, status: int, body: bytes) -> None:
        self.statuses[status] += 1
        if len(self.problems) >= 20:
            return
        if status >= 500:
            self.problems.append(f"{what}: {status} {body[:300]!r}")
        elif status >= 400 and not names_reason(body):
            self.problems.append(f"{what}: {status} without a reason: {body[:300]!r}")


def names_reason(body: bytes) -> bool:
    """A refusal is JSON with a `detail`; listed errors each name their field (or `loc`)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    if not isinstance(doc, dict) or not doc.get("detail"):
        return False
    rows = doc.get("errors", doc["detail"] if isinstance(doc["detail"], list) else [])
    return all(isinstance(r, dict) and ("field" in r or "loc" in r) for r in rows)


def budget(share: float, parts: int = 1) -> int:
    return max(10, int(EXAMPLES * share / parts))


FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": False,
}


# --- schemathesis: every operation of both published schemas ---


def fuzz_schema(base_url: str, headers: dict[str, str], share: float, tally: Tally) -> int:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{base_url}/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    session = requests.Session()
    per_mode = budget(share, 2 * len(operations))
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=per_mode, **FUZZ_SETTINGS)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                what = f"{case.method} {case.formatted_path} {case.query or ''}"
                try:
                    response = case.call(
                        base_url=base_url, session=session, headers=headers, timeout=ANSWER_WITHIN_S
                    )
                except requests.RequestException as exc:
                    tally.problems.append(f"{what}: no answer ({type(exc).__name__})")
                    return
                tally.check(what, response.status_code, response.content)

            started = time.monotonic()
            try:
                call()
                print(
                    f"  {operation.label} {mode.value}: {time.monotonic() - started:.1f} s",
                    flush=True,
                )
            except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
                continue
    session.close()
    return len(operations)


def test_schemathesis_finds_no_server_error(fuzzed: Pipeline) -> None:
    tally = Tally()
    admin = {"authorization": f"Bearer {ADMIN}"}
    api_operations = fuzz_schema(fuzzed.api_url, admin, 0.2, tally)
    ingest = {"authorization": f"Bearer {TOKEN}"}
    ingest_operations = fuzz_schema(fuzzed.ingest_url, ingest, 0.1, tally)
    print(
        f"schemathesis: {api_operations} api + {ingest_operations} ingest operations, "
        f"answers {dict(sorted(tally.statuses.items()))}"
    )
    assert api_operations >= 3 and ingest_operations >= 2
    assert not tally.problems, "\n".join(tally.problems)
    assert httpx.get(f"{fuzzed.api_url}/api/v1/live", headers=admin).status_code == 200


# --- hypothesis: hostile bodies ---

FAR_TIMES = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2262-04-11T23:47:16Z",
    "2026-02-30T00:00:00Z",
    "nope",
    "",
    "2026-01-01T00:00:00",
    "1e400",
)
HUGE = st.sampled_from((300, 5000, 200_000)).map(lambda n: "x" * n)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    HUGE,
    st.sampled_from(FAR_TIMES),
    st.sampled_from(("\ud800", "a|b", "\x00", "voice", "chat")),
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = (
    "id",
    "type",
    "time",
    "contact",
    "channel",
    "queue",
    "agent",
    "customer",
    "stage",
    "issue",
    "first_contact",
    "reason",
    "state",
    "csat",
    "nps",
    "attributes",
)


@st.composite
def hostile_event(draw: st.DrawFn) -> dict[str, Any]:
    """A mostly valid event with some fields replaced by hostile values, and unknown ones."""
    event: dict[str, Any] = {
        "id": f"fz-{draw(st.integers(0, 10**9))}",
        "type": "contact.offered",
        "time": iso(clock.now() - draw(st.integers(0, 3 * 86400))),
        "contact": f"fz-{draw(st.integers(0, 1000))}",
        "channel": "chat",
        "queue": "fuzz",
    }
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        event[name] = draw(VALUE)
    if draw(st.booleans()):
        event[draw(st.text(min_size=1, max_size=20))] = draw(VALUE)
    return event


def deep(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def encode(value: Any, damage: int, cut: int) -> bytes:
    """JSON (NaN and lone surrogates included), sometimes truncated or with bad UTF-8 bytes."""
    body = json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    if damage == 1:
        body = body[: cut % (len(body) + 1)]
    elif damage == 2:
        at = cut % (len(body) + 1)
        body = body[:at] + b"\xff\xfe\xc3" + body[at:]
    return body


class Body:
    """Raw bytes with a short repr (hypothesis prints examples; some are 200 kB)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"Body({len(self.raw)} bytes: {self.raw[:120]!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


BODIES = st.one_of(
    st.builds(
        encode,
        st.lists(hostile_event(), min_size=1, max_size=5) | hostile_event(),
        st.sampled_from((0, 0, 0, 1, 2)),
        st.integers(0, 10**6),
    ),
    st.builds(encode, VALUE, st.sampled_from((0, 1, 2)), st.integers(0, 10**6)),
    st.builds(deep, st.sampled_from((50, 1000, 100_000)), st.sampled_from(("list", "dict"))),
    st.binary(max_size=300),
).map(Body)
Sender = Callable[[httpx.Client, bytes], httpx.Response]


def _events(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(
        "/v1/events",
        content=body,
        headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
    )


def _chatwoot(client: httpx.Client, body: bytes) -> httpx.Response:
    stamp = str(int(clock.now()))
    signature = sig.chatwoot_signature(SECRETS["chatwoot_secret"], stamp, body)
    return client.post(
        "/webhooks/chatwoot",
        content=body,
        headers={
            "content-type": "application/json",
            "x-chatwoot-timestamp": stamp,
            "x-chatwoot-signature": signature,
        },
    )


def _zendesk(client: httpx.Client, body: bytes) -> httpx.Response:
    stamp = iso(clock.now())
    signature = sig.zendesk_signature(SECRETS["zendesk_secret"], stamp, body)
    return client.post(
        "/webhooks/zendesk",
        content=body,
        headers={
            "content-type": "application/json",
            "x-zendesk-webhook-signature-timestamp": stamp,
            "x-zendesk-webhook-signature": signature,
        },
    )


def _bearer(path: str, secret: str, kind: str) -> Sender:
    def send(client: httpx.Client, body: bytes) -> httpx.Response:
        return client.post(
            path,
            content=body,
            headers={"authorization": f"Bearer {SECRETS[secret]}", "content-type": kind},
        )

    return send


def _connect(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(
        "/webhooks/amazon-connect",
        content=body,
        headers={
            "x-amz-firehose-access-key": SECRETS["amazon_connect_token"],
            "content-type": "application/json",
        },
    )


def _twilio(path: str) -> Sender:
    """Form posts, signed over the URL and the parsed pairs exactly as the ingest parses them."""

    def send(client: httpx.Client, body: bytes) -> httpx.Response:
        try:
            pairs = _pairs(json.loads(body))
        except (ValueError, RecursionError):
            pairs = [("Body", body.decode("latin-1"))]
        form = urlencode(pairs).encode()
        signed = parse_qsl(form.decode(), keep_blank_values=True)
        url = f"{client.base_url}".rstrip("/") + path
        signature = sig.twilio_signature(SECRETS["twilio_auth_token"], url, signed)
        return client.post(
            path,
            content=form,
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": signature,
            },
        )

    return send


def _pairs(value: Any) -> list[tuple[str, str]]:
    items = value if isinstance(value, list) else [value]
    pairs: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, dict):
            for k, v in item.items():
                text = v if isinstance(v, str) else json.dumps(v)
                pairs.append(
                    (
                        k.encode("utf-8", "replace").decode(),
                        text.encode("utf-8", "replace").decode(),
                    )
                )
    return pairs or [("CallSid", "CA1")]


TARGETS: dict[str, Sender] = {
    "/v1/events": _events,
    "/webhooks/chatwoot": _chatwoot,
    "/webhooks/zendesk": _zendesk,
    "/webhooks/amazon-connect": _connect,
    "/v1/cloudevents": _bearer("/v1/cloudevents", "cloudevents_token", "application/json"),
    "/webhooks/asterisk/queue-log": _bearer(
        "/webhooks/asterisk/queue-log", "asterisk_token", "text/plain"
    ),
    "/webhooks/twilio/voice": _twilio("/webhooks/twilio/voice"),
    "/webhooks/twilio/taskrouter": _twilio("/webhooks/twilio/taskrouter"),
}


def fuzz_target(client: httpx.Client, path: str, send: Sender, examples: int, tally: Tally) -> None:
    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(body=BODIES)
    def post(body: Body) -> None:
        try:
            response = send(client, body.raw)
        except httpx.HTTPError as exc:  # no answer at all is as bad as a 5xx
            tally.problems.append(f"{path}: {type(exc).__name__} for {body!r}")
            return
        tally.check(f"{path} {body!r}", response.status_code, response.content)

    post()


def test_hostile_bodies_get_no_5xx_and_the_consumer_goes_on(fuzzed: Pipeline) -> None:
    tally = Tally()
    with httpx.Client(base_url=fuzzed.ingest_url, timeout=30) as client:
        for path, send in TARGETS.items():
            share = 0.4 if path == "/v1/events" else 0.3 / (len(TARGETS) - 1)
            fuzz_target(client, path, send, budget(share), tally)
    print(f"hostile bodies: answers {dict(sorted(tally.statuses.items()))}")
    assert not tally.problems, "\n".join(tally.problems)
    assert_consumer_goes_on(fuzzed)


def assert_consumer_goes_on(pipeline: Pipeline) -> None:
    """A valid event posted after the fuzz shows up in /api/v1/live within a bound."""
    queue = f"canary-{uuid.uuid4().hex[:8]}"
    event = {
        "id": queue,
        "type": "contact.offered",
        "time": iso(clock.now() - 1),
        "contact": queue,
        "channel": "social",
        "queue": queue,
    }
    response = httpx.post(
        f"{pipeline.ingest_url}/v1/events", json=event, headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 202, response.text
    admin = {"authorization": f"Bearer {ADMIN}"}

    def counted() -> bool:
        doc = httpx.get(f"{pipeline.api_url}/api/v1/live", headers=admin, timeout=10).json()
        return bool(doc["queues"].get(queue, {}).get("offered") == 1)

    wait_until(counted, 90, "the canary event in /api/v1/live")


# --- hostile header values, on every header the processes read ---

INGEST_HEADERS = {
    "/v1/events": ("authorization", "content-type"),  # framing headers: raw, further down
    "/webhooks/chatwoot": ("x-chatwoot-timestamp", "x-chatwoot-signature", "content-type"),
    "/webhooks/zendesk": (
        "x-zendesk-webhook-signature-timestamp",
        "x-zendesk-webhook-signature",
        "content-type",
    ),
    "/webhooks/amazon-connect": ("x-amz-firehose-access-key", "x-api-key", "authorization"),
    "/v1/cloudevents": (
        "authorization",
        "content-type",
        "ce-specversion",
        "ce-id",
        "ce-type",
        "ce-source",
        "ce-time",
        "ce-subject",
    ),
    "/webhooks/asterisk/queue-log": ("authorization", "content-type"),
    "/webhooks/twilio/voice": ("x-twilio-signature", "host", "content-type"),
    "/webhooks/twilio/taskrouter": ("x-twilio-signature", "host", "content-type"),
}
API_HEADERS = {
    "/api/v1/live": ("authorization", "x-api-key", "cookie", "accept"),
    "/api/v1/volume": ("authorization", "cookie", "accept"),
    "/api/v1/config": ("authorization", "x-api-key", "cookie"),
    "/": ("cookie", "authorization", "accept"),
}
# What h11 lets a client send in a header value: visible ASCII, obs-text bytes, space and tab.
HEADER_BYTES = [b for b in range(256) if b in (9, 32) or 33 <= b <= 126 or b >= 128]
NASTY_HEADERS = (
    b"Bearer \xff\xfe",
    "Bearer tökén".encode(),
    b"Bearer " + b"a" * 8000,
    b"sha256=\x80",
    b"1e400",
    b"-1",
    b"99999999999999999999",
    b"ccp_session=\xff",
    b"ccp_session=" + b"x" * 4000,
    b"application/cloudevents-batch+json",
    b"text/csv",
    b"\xc3",
    b"[::1]:99999",
    b"a" * 300,
    b"\xd0\xba\xd0\xbb",
)
HEADER_VALUE = st.lists(st.sampled_from(HEADER_BYTES), max_size=80).map(
    lambda raw: bytes(raw).strip(b" \t")
)


def send_header(
    base_url: str, path: str, post: bool, name: str, value: bytes, tally: Tally
) -> None:
    headers = {"content-type": "application/json", name: value}
    what = f"{path} {name}: {value[:80]!r}"
    try:
        with httpx.Client(base_url=base_url, timeout=ANSWER_WITHIN_S) as client:
            if post:
                response = client.post(path, content=b"{}", headers=headers)
            else:
                response = client.get(path, headers=headers)
    except httpx.LocalProtocolError:  # the client itself refused to send it
        return
    except httpx.HTTPError as exc:
        tally.problems.append(f"{what}: no answer ({type(exc).__name__})")
        return
    tally.check(what, response.status_code, response.content)


def fuzz_headers(
    base_url: str, targets: dict[str, tuple[str, ...]], post: bool, examples: int, tally: Tally
) -> None:
    """Every header of every path with each known-nasty value, then random bytes."""
    for path, names in targets.items():
        for name in names:
            for value in NASTY_HEADERS:
                send_header(base_url, path, post, name, value, tally)

    @settings(max_examples=examples, **FUZZ_SETTINGS)
    @given(path=st.sampled_from(sorted(targets)), data=st.data(), value=HEADER_VALUE)
    def call(path: str, data: st.DataObject, value: bytes) -> None:
        send_header(base_url, path, post, data.draw(st.sampled_from(targets[path])), value, tally)

    call()


def test_hostile_headers_get_no_5xx(fuzzed: Pipeline) -> None:
    tally = Tally()
    fuzz_headers(fuzzed.ingest_url, INGEST_HEADERS, True, budget(0.1), tally)
    fuzz_headers(fuzzed.api_url, API_HEADERS, False, budget(0.05), tally)
    print(f"hostile headers: answers {dict(sorted(tally.statuses.items()))}")
    assert not tally.problems, "\n".join(tally.problems)


# --- hostile framing: Content-Length and Transfer-Encoding, as raw bytes ---
# httpx will not send a wrong Content-Length, so these go out over a socket: the server's own
# refusals (llhttp's) must be as clear as the apps': JSON naming the reason, never a 5xx.

FRAMING_NAMES = (b"Content-Length", b"Transfer-Encoding", b"content-length", b"TRANSFER-ENCODING")
NASTY_FRAMING = (
    b"2",
    b"0",
    b"abc",
    b"-1",
    b"+2",
    b" 2",
    b"2, 2",
    b"0x2",
    b"1e3",
    b"99999999999999999999",
    b"chunked",
    b"gzip",
    b"chunked, gzip",
    b"gzip, chunked",
    b"identity",
    b"chunked\xff",
)
FRAMING = st.lists(
    st.tuples(st.sampled_from(FRAMING_NAMES), st.sampled_from(NASTY_FRAMING) | HEADER_VALUE),
    min_size=1,
    max_size=3,
)
FRAMED_BODIES = (b"{}", b'[{"id": "x"}]', b"2\r\n{}\r\n0\r\n\r\n", b"zz\r\n")


def waits_for_more(framing: list[tuple[bytes, bytes]], body: bytes) -> bool:
    """A valid Content-Length beyond the body: the server rightly waits for the rest."""
    return any(
        name.lower() == b"content-length"
        and value.strip(b" \t").isdigit()
        and int(value.strip(b" \t")) > len(body)
        for name, value in framing
    )


def send_framed(
    base_url: str, framing: list[tuple[bytes, bytes]], body: bytes, tally: Tally
) -> None:
    lines = [b"POST /v1/events HTTP/1.1", b"Host: fuzz", b"Authorization: Bearer " + TOKEN.encode()]
    lines += [b"Content-Type: application/json", *(name + b": " + value for name, value in framing)]
    what = f"/v1/events framed {framing!r} {body!r}"
    raw = RawHttp(base_url, timeout=ANSWER_WITHIN_S)
    try:
        raw.send(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        status, answer = raw.answer()
    except (OSError, ValueError, IndexError) as exc:
        tally.problems.append(f"{what}: no answer ({type(exc).__name__})")
        return
    finally:
        raw.close()
    tally.check(what, status, answer)


def test_hostile_framing_gets_a_clear_answer(fuzzed: Pipeline) -> None:
    tally = Tally()

    @settings(max_examples=budget(0.05), **FUZZ_SETTINGS)
    @given(framing=FRAMING, body=st.sampled_from(FRAMED_BODIES))
    def post(framing: list[tuple[bytes, bytes]], body: bytes) -> None:
        assume(not waits_for_more(framing, body))
        send_framed(fuzzed.ingest_url, framing, body, tally)

    post()
    print(f"hostile framing: answers {dict(sorted(tally.statuses.items()))}")
    assert not tally.problems, "\n".join(tally.problems)
    assert tally.statuses[400] >= 1  # some framings were refused by the server itself
