"""Rate limits that unauthenticated traffic cannot spend: verify first, then charge.

Two kinds of token bucket. A request whose signature or token verified is charged to its
source's bucket (the vendor webhook path, or for `/v1/events` the bearer token, else the client
address), so one noisy platform cannot starve the others. A request that failed verification is
charged to its peer address's failure bucket instead; once that is empty its failures are
answered 429 rather than 401. So 700 unsigned posts to `/webhooks/chatwoot` never make a correctly
signed one wait. Limits are per ingest process; behind a load balancer, multiply by the replicas.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

MAX_SOURCES = 10_000  # bounded memory: the least recently seen sources are forgotten


@dataclass
class Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    rate_per_s: float
    burst: int
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def take(self, source: str, now: float | None = None) -> float:
        """0 when allowed, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        bucket = self.buckets.pop(source, None) or Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate_per_s)
        bucket.updated = now
        self.buckets[source] = bucket  # re-inserted last: dict order is recency
        if len(self.buckets) > MAX_SOURCES:
            self.buckets.pop(next(iter(self.buckets)))
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate_per_s


@dataclass
class Limits:
    """The verified sources' buckets and the failing clients' buckets, kept apart."""

    sources: RateLimiter
    failures: RateLimiter

    @classmethod
    def of(cls, rate_per_s: float, burst: int) -> Limits:
        return cls(RateLimiter(rate_per_s, burst), RateLimiter(rate_per_s, burst))

    def admit(self, source: str) -> float:
        """Charge a verified request to its source; the seconds to wait when over the limit."""
        return self.sources.take(source)

    def failed(self, client: str | None) -> float:
        """Charge a failed verification to its peer address (never to a source)."""
        return self.failures.take(f"client:{client or 'unknown'}")


def source_of(path: str, authorization: str | None, client: str | None) -> str:
    if path.startswith("/webhooks/") or path.startswith("/v1/cloudevents"):
        return path
    if authorization:
        return (
            "token:"
            + hashlib.sha256(authorization.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        )
    return f"client:{client or 'unknown'}"
