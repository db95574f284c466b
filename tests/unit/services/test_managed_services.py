"""Managed Kafka and Redis settings: what each maps to, what is refused, and that every client of
every process is built from them (docs/managed-services.md)."""

from __future__ import annotations

import ast
import asyncio
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from services.connections import kafka_security, redis_target
from services.settings import Settings
from tests.tls_certs import Pki, make_pki

ROOT = Path(__file__).resolve().parents[3]
PROCESS_PACKAGES = ("ingest", "aggregator", "api", "ccpulse", "simulator")
KAFKA_CLIENTS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"}
# The one Redis shell per process package (services.connections.redis_target inside); the
# embedded stack's own short-lived client (ccpulse.stack) talks to the server it started.
REDIS_SHELLS = {
    "api/redis_connect.py",
    "aggregator/__main__.py",
    "ingest/admin_keys.py",
    "ccpulse/stack.py",
    "deploy/healthcheck.py",  # the aggregator's liveness probe, synchronous
}
PASSWORD = "kafka-password-never-logged-0123456789"
BROKER = "kafka.example:9093"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _sources() -> list[Path]:
    found = [p for pkg in PROCESS_PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    return sorted([*found, ROOT / "deploy" / "healthcheck.py"])


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    return ""


def _kafka_constructions() -> list[tuple[str, ast.Call]]:
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _name(node.func).split(".")[-1] in KAFKA_CLIENTS:
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return found


def _takes_security(call: ast.Call) -> bool:
    """`**kafka_security(...)` among the call's keywords."""
    return any(
        k.arg is None and isinstance(k.value, ast.Call) and _name(k.value.func) == "kafka_security"
        for k in call.keywords
    )


def test_every_kafka_client_of_every_process_takes_the_security_settings() -> None:
    calls = _kafka_constructions()
    # publisher, replay, source consumer + dead letters, log-end probe, imports, rebuild
    assert len(calls) >= 7, [where for where, _ in calls]
    ignoring = [
        where
        for where, call in calls
        if not any(
            k.arg is None
            and isinstance(k.value, ast.Call)
            and _name(k.value.func) == "kafka_security"
            for k in call.keywords
        )
    ]
    assert ignoring == [], f"built without **kafka_security(settings): {ignoring}"


def test_every_redis_client_is_built_by_its_package_shell() -> None:
    """Redis(...), .from_url, Sentinel(...) anywhere else would skip password, TLS and Sentinel."""
    builders = {"Redis", "RedisCluster", "Sentinel", "Redis.from_url", "RedisCluster.from_url"}
    builders |= {"StrictRedis", "from_url", "redis.from_url"}
    builders |= {f"redis.{b}" for b in builders}
    stray = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _sources()
        if str(path.relative_to(ROOT)) not in REDIS_SHELLS
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and _name(node.func) in builders
    ]
    assert stray == []
    for shell in REDIS_SHELLS - {"ccpulse/stack.py"}:
        assert "redis_target(settings" in (ROOT / shell).read_text(), shell


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    assert kafka_security(Settings()) == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_maps_to_aiokafka_keywords_with_a_verifying_context(
    pki: Pki, mechanism: str
) -> None:
    settings = Settings(
        kafka_bootstrap=BROKER,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,  # type: ignore[arg-type]
        kafka_sasl_username="svc-ccpulse",
        kafka_sasl_password=SecretStr(PASSWORD),
        kafka_ssl_cafile=pki.ca,
    )
    out = kafka_security(settings)
    context = out.pop("ssl_context")  # type: ignore[misc]
    assert out == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "svc-ccpulse",
        "sasl_plain_password": PASSWORD,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "ccpulse test CA"),),)
    ]


def test_client_certificates_are_loaded_and_a_wrong_key_is_refused(pki: Pki) -> None:
    good = Settings(
        kafka_bootstrap=BROKER,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki.ca,
        kafka_ssl_certfile=pki.client_cert,
        kafka_ssl_keyfile=pki.client_key,
    )
    assert "sasl_mechanism" not in kafka_security(good)
    assert isinstance(kafka_security(good).get("ssl_context"), ssl.SSLContext)
    wrong = good.model_copy(update={"kafka_ssl_keyfile": pki.server_key})
    with pytest.raises(ssl.SSLError):
        kafka_security(wrong)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"}, "PASSWORD"),
        ({"kafka_sasl_mechanism": "PLAIN"}, "does not use SASL"),
        ({"kafka_ssl_cafile": "ca.crt"}, "not TLS"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"}, "CAFILE"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "c.pem"}, "go together"),
        ({"redis_sentinels": ["127.0.0.1:26379"]}, "SENTINEL_SERVICE"),
        ({"redis_sentinels": ["nohost"], "redis_sentinel_service": "m"}, "host:port"),
        ({"kafka_security_protocol": "PLAINTEXT_TYPO"}, "kafka_security_protocol"),
        ({"kafka_security_protocol": "SSL"}, "embedded broker speaks PLAINTEXT only"),
    ],
)
def test_half_a_security_setup_is_refused_at_start(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**fields)  # type: ignore[arg-type]


def test_passwords_never_show_in_reprs_or_refusals(pki: Pki) -> None:
    settings = Settings(
        kafka_bootstrap=BROKER,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr(PASSWORD),
        redis_password=SecretStr(PASSWORD),
        redis_sentinels=["127.0.0.1:26379"],
        redis_sentinel_service="mymaster",
        redis_sentinel_password=SecretStr(PASSWORD),
    )
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in repr(redis_target(settings))
    with pytest.raises(ValidationError) as refused:
        Settings(kafka_sasl_password=SecretStr(PASSWORD), kafka_sasl_mechanism="PLAIN")
    assert PASSWORD not in str(refused.value)


def test_redis_targets_carry_password_tls_files_sentinels_and_the_replica(pki: Pki) -> None:
    tls = redis_target(
        Settings(
            redis_url="rediss://cache.example:6380/0",
            redis_password=SecretStr(PASSWORD),
            redis_ssl_cafile=pki.ca,
        )
    )
    assert tls.url == "rediss://cache.example:6380/0" and not tls.sentinels
    assert tls.options == {
        "password": PASSWORD,
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": str(pki.ca),
    }
    plain = redis_target(Settings(redis_url="redis://r:6379/0", redis_ssl_cafile=pki.ca))
    assert plain.options == {}  # TLS keywords on a plain connection would be refused by redis-py
    sentinel = Settings(
        redis_sentinels=["10.0.0.1:26379", "[::1]:26380"],
        redis_sentinel_service="mymaster",
        redis_replica_url="redis://replica:6379/0",
    )
    primary = redis_target(sentinel)
    assert primary.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert primary.service == "mymaster" and "db" not in primary.options
    numbered = sentinel.model_copy(update={"redis_url": "redis://ignored/3"})
    assert redis_target(numbered).options == {"db": 3}
    replica = redis_target(sentinel, replica=True)
    assert replica.url == "redis://replica:6379/0" and not replica.sentinels
    assert redis_target(Settings(), replica=True).url == redis_target(Settings()).url


def test_built_clients_carry_the_settings() -> None:
    """The real aiokafka objects, not the source text: what each client will connect with."""
    from aggregator.source import DeadLetters, Source
    from ingest.publisher import Publisher

    settings = Settings(
        kafka_bootstrap="127.0.0.1:9",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr(PASSWORD),
    )

    async def build() -> list[object]:
        async def nothing(*_: object) -> None:
            return None

        source = Source(settings, nothing, nothing)  # type: ignore[arg-type]
        return [
            Publisher(settings)._build().client,
            source.consumer._client,
            DeadLetters(settings).producer.client,
        ]

    for client in asyncio.run(build()):
        assert client._security_protocol == "SASL_PLAINTEXT"  # type: ignore[attr-defined]
        assert client._sasl_mechanism == "SCRAM-SHA-256"  # type: ignore[attr-defined]


def test_every_topic_name_goes_through_the_installation_prefix() -> None:
    """keys.TOPIC_* / ALL_TOPICS used in a process package only inside `settings.topic(...)`:
    a bare name would read or write the other installation's topic on a shared cluster."""
    bare = []
    for path in _sources():
        tree = ast.parse(path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
            if not (name.startswith("TOPIC_") or name == "ALL_TOPICS"):
                continue
            if isinstance(parents.get(node), ast.ImportFrom | ast.alias):
                continue
            if _within_topic_call(node, parents):
                continue
            bare.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    assert bare == []


def _within_topic_call(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """An argument of `.topic(...)`, or the iterable of a comprehension whose element is one."""
    parent = parents.get(node)
    if isinstance(parent, ast.Call) and _name(parent.func).endswith("topic"):
        return node in parent.args
    if isinstance(parent, ast.comprehension):
        outer = parents.get(parent)
        element = getattr(outer, "elt", None)
        return isinstance(element, ast.Call) and _name(element.func).endswith(".topic")
    return False


def test_the_topic_prefix_is_checked_and_applied() -> None:
    assert Settings().topic("ccpulse.events") == "ccpulse.events"
    assert Settings(kafka_topic_prefix="site-b.").topic("ccpulse.raw") == "site-b.ccpulse.raw"
    with pytest.raises(ValidationError, match="kafka_topic_prefix"):
        Settings(kafka_topic_prefix="site b/")
