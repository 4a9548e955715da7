"""Per-token rate limits for the API, counted with the `limits` library.

Counts are kept in memory by default, so each worker process counts on its own; point
HAVEN_RATE_LIMIT_STORAGE at a shared store (e.g. Redis, with its client installed) to count across
processes and replicas.
"""

import math
import time

from limits import parse, storage, strategies

from app.core.errors import DomainError


class RateLimited(DomainError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class TokenRateLimiter:
    def __init__(self, limit: str, storage_uri: str = "memory://"):
        self.item = parse(limit)
        self.limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    def check(self, token_id: int) -> None:
        """Count one request of this token; raise RateLimited once its allowance is spent."""
        key = str(token_id)
        if self.limiter.hit(self.item, "api-token", key):
            return
        reset_at, _remaining = self.limiter.get_window_stats(self.item, "api-token", key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(
            f"This token has made more than {self.item.amount} requests in "
            f"{self.item.get_expiry()} seconds. Wait {retry_after} s (Retry-After) and send the "
            "request again.",
            retry_after=retry_after,
        )
