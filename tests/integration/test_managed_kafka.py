"""Kafka security settings against the real embedded broker.

The embedded broker (Tansu 0.6) cannot serve TLS or SASL here: with `--cert` its listener never
completes a TLS handshake, and with `--authentication` its own `user create` is refused, so no
SCRAM user can exist. What is checked on the wire is therefore that a client set for TLS or SASL
really speaks it (a plaintext broker cannot answer it) and that the ingest says so in words;
the mapping of every setting to aiokafka's keywords is tests/unit/services/test_managed_services.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from ccpulse.stack import EmbeddedBroker
from ingest.publisher import BrokerUnavailable, Publisher
from services import keys
from services.settings import Settings
from tests.tls_certs import make_pki


async def _start(settings: Settings) -> tuple[str, float]:
    publisher = Publisher(settings)
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnavailable) as refused:
            await publisher.send_all(keys.TOPIC_EVENTS, [])
    finally:
        await publisher.close()
    return str(refused.value), time.monotonic() - started


async def test_a_plaintext_client_publishes(broker: EmbeddedBroker) -> None:
    """The default (PLAINTEXT) still reaches the broker: the control for the refusals below."""
    publisher = Publisher(Settings(kafka_bootstrap=broker.bootstrap, kafka_idempotence=False))
    try:
        await publisher.send_all(keys.TOPIC_EVENTS, [(b"k", b"{}")])
    finally:
        await publisher.close()


async def test_a_tls_client_really_speaks_tls_and_says_what_to_check(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,  # the embedded broker refuses idempotent producers
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki.ca,
        kafka_request_timeout_ms=2000,
    )
    message, took = await _start(settings)
    assert message.startswith("broker unreachable over SSL: TimeoutError"), message
    assert "no TLS handshake" in message and "CCPULSE_KAFKA_SECURITY_PROTOCOL" in message
    assert took < 10


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_a_sasl_client_really_authenticates_and_never_shows_its_password(
    broker: EmbeddedBroker, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = "sasl-password-never-logged-0123456789"
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence=False,  # the embedded broker refuses idempotent producers
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,  # type: ignore[arg-type]
        kafka_sasl_username="svc-ccpulse",
        kafka_sasl_password=SecretStr(password),
        kafka_request_timeout_ms=2000,
    )
    message, took = await _start(settings)
    assert message.startswith("broker unreachable over SASL_PLAINTEXT"), message
    assert f"SASL {mechanism}" in message and took < 10
    assert "UnsupportedSaslMechanism" in caplog.text  # the broker answered the SASL handshake
    assert password not in caplog.text and password not in message
