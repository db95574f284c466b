"""How every process connects to a managed Kafka or Redis, as plain keyword arguments.

Pure: no aiokafka or redis here (services imports neither). Each process package passes
`kafka_security(settings)` to every aiokafka client it builds and `redis_target(settings)` to its
one Redis shell, so one setting secures all of them and none can be forgotten
(tests/unit/test_managed_services.py enumerates the constructions).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict
from urllib.parse import urlsplit

from services.settings import Settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class KafkaSecurity(TypedDict):
    """aiokafka's own keyword names (AIOKafkaProducer / AIOKafkaConsumer)."""

    security_protocol: str
    ssl_context: NotRequired[ssl.SSLContext]
    sasl_mechanism: NotRequired[str]
    sasl_plain_username: NotRequired[str]
    sasl_plain_password: NotRequired[str]


def tls_context(
    cafile: Path | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    key_password: str | None = None,
) -> ssl.SSLContext:
    """A verifying client context: the given CA (else the system's), hostname checked, and a
    client certificate when one is given (mutual TLS)."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if certfile is not None:
        context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None, key_password)
    return context


def kafka_security(settings: Settings) -> KafkaSecurity:
    """The security keywords of every Kafka client: PLAINTEXT by default (the embedded broker)."""
    protocol = settings.kafka_security_protocol
    out: KafkaSecurity = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        password = settings.kafka_ssl_key_password
        out["ssl_context"] = tls_context(
            settings.kafka_ssl_cafile,
            settings.kafka_ssl_certfile,
            settings.kafka_ssl_keyfile,
            password.get_secret_value() if password else None,
        )
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_mechanism and settings.kafka_sasl_password  # validated
        out["sasl_mechanism"] = settings.kafka_sasl_mechanism
        out["sasl_plain_username"] = settings.kafka_sasl_username or ""
        out["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return out


@dataclass(frozen=True)
class RedisTarget:
    """Where one Redis client connects and with what; a Redis shell turns it into a client.

    `url` is used unless `sentinels` is set (then redis-py's Sentinel finds `service`'s primary).
    `options` are connection keywords (password, TLS files) for the URL, cluster or primary.
    """

    url: str
    cluster: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    options: dict[str, object] = field(default_factory=dict)
    sentinel_options: dict[str, object] = field(default_factory=dict)

    def __repr__(self) -> str:  # never a password in a log line or traceback
        return f"RedisTarget(sentinels={self.sentinels}, service={self.service!r}, ...)"


def redis_target(settings: Settings, *, replica: bool = False) -> RedisTarget:
    """The primary (or, with `replica` and CCPULSE_REDIS_REPLICA_URL set, the read replica)."""
    url = settings.redis_url or DEFAULT_REDIS_URL
    if replica and settings.redis_replica_url:
        url = settings.redis_replica_url
    tls = url.startswith("rediss://") or (
        bool(settings.redis_sentinels) and settings.redis_ssl_cafile is not None
    )
    options: dict[str, object] = {}
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    if settings.redis_username is not None:
        options["username"] = settings.redis_username
    if tls:
        if settings.redis_sentinels:
            options["ssl"] = True
        options["ssl_cert_reqs"] = "required"
        if settings.redis_ssl_cafile is not None:
            options["ssl_ca_certs"] = str(settings.redis_ssl_cafile)
        if settings.redis_ssl_certfile is not None:
            options["ssl_certfile"] = str(settings.redis_ssl_certfile)
            options["ssl_keyfile"] = str(settings.redis_ssl_keyfile)
    if settings.redis_sentinels and not (replica and settings.redis_replica_url):
        database = urlsplit(settings.redis_url or "").path.strip("/")
        if database.isdigit():  # the URL's database number; its host is the sentinels' to say
            options["db"] = int(database)
        sentinel_options: dict[str, object] = {}
        if settings.redis_sentinel_password is not None:
            sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
        return RedisTarget(
            url=url,
            sentinels=tuple(_address(a) for a in settings.redis_sentinels),
            service=settings.redis_sentinel_service,
            options=options,
            sentinel_options=sentinel_options,
        )
    return RedisTarget(url=url, cluster=settings.redis_cluster, options=options)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    return host.strip("[]"), int(port)


def kafka_failure(settings: Settings, exc: BaseException) -> str:
    """Why no broker answered, in words an operator can act on (no secrets: names only).

    A TLS client against a plaintext listener (or the reverse) shows only as a timeout, and a
    SASL mismatch as an error code: say which protocol was tried and what to check.
    """
    protocol = settings.kafka_security_protocol
    text = f"broker unreachable over {protocol}: {type(exc).__name__}"
    if protocol.endswith("SSL") and isinstance(exc, TimeoutError):
        text += (
            " (no TLS handshake: does the listener speak TLS? check "
            "CCPULSE_KAFKA_SECURITY_PROTOCOL, the port and CCPULSE_KAFKA_SSL_CAFILE)"
        )
    elif protocol.startswith("SASL_"):
        text += (
            f" (SASL {settings.kafka_sasl_mechanism}: check the mechanism, user and password, "
            "and that the listener uses SASL; the aiokafka log line names the broker's reason)"
        )
    return text
