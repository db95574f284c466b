"""The ingest's cheaper pseudonymising decides exactly as the plain steps it replaced: the
shortcut past text that cannot hold a number or an address, the scheme check, the prepared HMAC
states, the copy without `model_copy`, and so the whole protected event and its wire bytes."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.state import protect
from services import privacy
from services.contract import IDENT_MAX, NAME_MAX, TEXT_MAX, ContactEvent, EventType

KEY = b"test-key-for-equivalence"

# Text made of what the scanner reacts to: digits, `@`, dots, phone punctuation, schemes, hashes.
WORDS = "0 1 7 9 12 555 + ( ) - . / @ a B x ext # : tel: mailto: SIP: h: example.com é ٣ İ _ x1"
PIECES = st.sampled_from([*WORDS.split(), "0123456789abcdef" * 2, " ", "\u00a0", "\n", "support"])
TEXT = st.lists(PIECES, max_size=24).map("".join) | st.text(max_size=40)
# What the contract takes as a name (queue, agent, stage...): no control characters, no `|`.
NAME = TEXT.map(lambda t: t.replace("\n", " ")).filter(
    lambda t: bool(t.strip()) and "|" not in t and all(ord(c) >= 32 for c in t)
)
IDENT = TEXT.filter(bool)


def old_strip_scheme(text: str) -> str:
    lowered = text[:10].lower()
    for scheme in privacy.SCHEMES:
        if lowered.startswith(scheme):
            return text[len(scheme) :].strip()
    return text


def old_pseudonymise(value: str, key: bytes) -> str:
    bare = old_strip_scheme(value.strip())
    if bare.startswith(privacy.HASH_PREFIX):
        return bare
    digest = hmac.new(key, privacy.normalise_identity(value).encode(), hashlib.sha256)
    return privacy.HASH_PREFIX + digest.hexdigest()[:32]


def old_pseudonymise_id(value: str, key: bytes) -> str:
    if old_strip_scheme(value.strip()).startswith(privacy.HASH_PREFIX):
        return old_strip_scheme(value.strip())
    if privacy.looks_personal(value):
        return old_pseudonymise(value, key)
    scrubbed = privacy.scrub_text(value, key)
    if scrubbed != value or privacy._HASH_TOKEN.search(value):
        return old_pseudonymise(scrubbed, key)
    return value


def old_protect(event: ContactEvent, key: bytes) -> ContactEvent:
    """`ingest.state.protect` as it was: `model_copy`, and the plain hashing of ids."""
    changes: dict[str, Any] = {"id": privacy.scrub_text(event.id, key, IDENT_MAX)}
    if event.customer is not None:
        changes["customer"] = old_pseudonymise(event.customer, key)
    for name in ("contact", "agent"):
        value = getattr(event, name)
        if value is not None:
            changes[name] = old_pseudonymise_id(value, key)
    for name in ("queue", "stage", "issue", "state"):
        value = getattr(event, name)
        if value is not None:
            changes[name] = privacy.scrub_text(value, key, NAME_MAX).strip()
    if event.reason is not None:
        changes["reason"] = privacy.scrub_text(event.reason, key, TEXT_MAX)
    if event.attributes:
        changes["attributes"] = privacy.scrub(event.attributes, key, TEXT_MAX)
    return event.model_copy(update=changes)


@settings(max_examples=3000, deadline=None)
@given(TEXT)
def test_the_shortcut_finds_the_spans_the_scan_finds(text: str) -> None:
    assert privacy.personal_spans(text) == privacy.scanned_spans(text)
    if not privacy.may_hold_personal(text):
        assert privacy.scanned_spans(text) == []


@settings(max_examples=2000, deadline=None)
@given(TEXT)
def test_schemes_and_ids_are_read_as_before(text: str) -> None:
    assert privacy._strip_scheme(text) == old_strip_scheme(text)
    assert privacy.pseudonymise_id(text, KEY) == old_pseudonymise_id(text, KEY)
    assert privacy.pseudonymise(text, KEY) == old_pseudonymise(text, KEY)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([0, 1, 32, 63, 64, 65, 200]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n)
    )
    | st.binary(max_size=200),
    st.binary(max_size=300),
)
def test_the_prepared_hmac_is_hmac_sha256(key: bytes, message: bytes) -> None:
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    assert privacy.keyed_sha256(key, message) == expected
    assert privacy.keyed_sha256(key, message) == expected  # prepared states are not consumed


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


EVENTS = st.fixed_dictionaries(
    {
        "id": IDENT,
        "type": st.sampled_from([t.value for t in EventType if t is not EventType.AGENT_STATE]),
        "time": st.just(datetime(2026, 12, 3, 9, 30, tzinfo=UTC).isoformat()),
        "channel": st.just("voice"),
        "contact": IDENT,
        "csat": st.integers(1, 5),
    },
    optional={
        "agent": optional(NAME),
        "customer": optional(IDENT),
        "queue": optional(NAME),
        "stage": optional(NAME),
        "issue": optional(NAME),
        "state": optional(NAME),
        "reason": optional(TEXT),
        "attributes": st.dictionaries(st.sampled_from(["note", "phone", "Email", "x1"]), TEXT),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={"id": TEXT, "customer": TEXT, "queue": TEXT, "reason": TEXT, "csat": st.just(3)},
    )
)
def test_the_copy_is_model_copy(changes: dict[str, Any]) -> None:
    event = ContactEvent.model_validate(
        {
            "id": "e1",
            "type": "contact.offered",
            "time": "2026-12-03T09:30:00Z",
            "contact": "c1",
            "channel": "voice",
        }
    )
    new, old = event.replaced(changes), event.model_copy(update=changes)
    assert new.__dict__ == old.__dict__
    assert new.__pydantic_fields_set__ == old.__pydantic_fields_set__
    assert (new.__pydantic_extra__, new.__pydantic_private__) == (None, None)
    assert type(new) is ContactEvent and new.to_wire() == old.to_wire()
    assert event.__pydantic_fields_set__ == {"id", "type", "time", "contact", "channel"}


@settings(max_examples=1500, deadline=None)
@given(EVENTS)
def test_protected_events_and_their_wire_bytes_are_as_before(raw: dict[str, Any]) -> None:
    try:
        event = ContactEvent.model_validate(raw)
    except ValidationError:
        assume(False)
        return
    new, old = protect(event, KEY), old_protect(event, KEY)
    assert new == old
    assert new.__dict__ == old.__dict__
    assert new.__pydantic_fields_set__ == old.__pydantic_fields_set__
    assert (new.__pydantic_extra__, new.__pydantic_private__) == (None, None)
    assert new.to_wire() == old.model_dump_json(exclude_none=True).encode()
    assert new.partition_key() == old.partition_key()
    assert event.__dict__ == ContactEvent.model_validate(raw).__dict__  # the original untouched
