"""A global throttle: the last line of abuse control when proof of work is not enough.

Why global and not per client: intake does not know who its clients are and must not learn it
(no IP addresses, no device data: docs/architecture.md §5.1), so it cannot tell one flooder from a
thousand reporters. What it can do is cap the *total* rate of costly requests (submissions,
receipt sign-ins, messages, evidence) so that a flood that paid its proofs of work still cannot
swamp storage, verification and the database; everyone then gets a clear 429 with Retry-After
for a moment instead of 503s and timeouts. Proof of work makes each request cost the sender;
the throttle bounds what the sender can buy.

A token bucket per intake process: `rate_per_minute` tokens refill continuously, up to a burst
of a tenth of a minute's worth (at least 5). With N intake replicas the cluster admits N times
the rate; size `INTAKE_THROTTLE_PER_MINUTE` for one replica. `0` turns it off.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from nameko.extensions import DependencyProvider

from wbs_plumbing.config import service_settings


class Throttled(Exception):
    """Too many requests right now, from everyone together; `.retry_after` in whole seconds."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


class TokenBucket:
    def __init__(self, rate_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.rate = rate_per_minute / 60.0
        self.capacity = max(5.0, rate_per_minute / 10.0)
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def admit(self) -> None:
        """Take one token, or raise Throttled with the wait until the next one."""
        if self.rate <= 0:
            return
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return
        raise Throttled(max(1, math.ceil((1.0 - self.tokens) / self.rate)))


class GlobalThrottle(DependencyProvider):
    """One bucket per intake process, from `INTAKE_THROTTLE_PER_MINUTE` [600]."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock

    def setup(self):
        from intake.settings import Settings

        rate = service_settings(self.container, Settings.from_config).throttle_per_minute
        self.bucket = TokenBucket(rate, self.clock)

    def get_dependency(self, worker_ctx):
        return self.bucket
