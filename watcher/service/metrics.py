"""Prometheus metrics on a registry of our own (no global), and upstream health.

Names follow Prometheus conventions: a `runstep_watcher_` prefix, `_total` for counters,
`_seconds` for durations.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watcher import __version__
from watcher.sources.kinds import TYPES

__all__ = ["Metrics", "UpstreamHealth", "code_label", "event_label"]

PREFIX = "runstep_watcher_"

#: Event types that get a series of their own; any other (a status the API invents, one
#: string per poll if it likes) is counted as "other": label values stay bounded.
RUN_STATUSES = (
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
)
STEP_STATUSES = ("in_progress", "cancelled", "failed", "completed", "expired")
KNOWN_EVENT_TYPES = frozenset(
    [f"thread.run.{s}" for s in RUN_STATUSES]
    + [f"thread.run.step.{s}" for s in STEP_STATUSES]
    # responses, batches, fine-tuning jobs, file batches: their statuses as the spec lists them
    + [f"{t.kind.object}.{s}" for t in TYPES.values() for s in t.kind.statuses]
)


def event_label(event_type: str) -> str:
    return event_type if event_type in KNOWN_EVENT_TYPES else "other"


def code_label(code: int | None) -> str:
    """An HTTP status as a label: 'error' for no answer, 'other' outside 100-599."""
    if code is None:
        return "error"
    return str(code) if 100 <= code <= 599 else "other"


@dataclass(slots=True)
class UpstreamHealth:
    """What the API has been answering lately: for /status and /metrics, not for readiness."""

    last_success: float | None = None  # unix time
    consecutive_failures: int = 0
    auth_refused: bool = False
    requests: int = 0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.health = UpstreamHealth()
        self.api_requests = Counter(
            PREFIX + "api_requests",
            "API requests by HTTP status code ('error': no answer)",
            ["code"],
            registry=r,
        )
        self.api_abandoned = Counter(
            PREFIX + "api_responses_abandoned",
            "API responses given up on: 'too_large' (past [api] max_response_bytes) or "
            "'timed_out' (past [api] timeout)",
            ["reason"],
            registry=r,
        )
        self.api_duration = Histogram(
            PREFIX + "api_request_duration_seconds",
            "API request duration",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.events = Counter(PREFIX + "events", "Events emitted, by type", ["type"], registry=r)
        self.watches_gone = Counter(
            PREFIX + "watches_gone",
            "Watches ended because their object answered 404 after being seen",
            registry=r,
        )
        self.watched_runs = Gauge(PREFIX + "watched_runs", "Runs being watched", registry=r)
        self.watched_threads = Gauge(
            PREFIX + "watched_threads", "Threads being watched for new runs", registry=r
        )
        self.poll_lag = Gauge(
            PREFIX + "poll_lag_seconds",
            "How late the last poll started against its due time",
            registry=r,
        )
        self.polls_in_flight = Gauge(
            PREFIX + "polls_in_flight", "Polls running now (waiting on the API)", registry=r
        )
        self.oldest_poll_in_flight = Gauge(
            PREFIX + "oldest_poll_in_flight_seconds",
            "How long the oldest poll in flight has been waiting",
            registry=r,
        )
        self.api_paused = Gauge(
            PREFIX + "api_paused_seconds",
            "What is left of a pause of every request after a 429",
            registry=r,
        )
        self.effective_interval = Gauge(
            PREFIX + "effective_poll_interval_seconds",
            "Moving average of the real time between two polls of an active run",
            registry=r,
        )
        self.request_rate = Gauge(
            PREFIX + "api_pace_requests_per_second",
            "Requests per second the pacing allows now (0: no limit learned or set)",
            registry=r,
        )
        self.webhook_queue = Gauge(
            PREFIX + "webhook_queue_depth",
            "Webhook events not delivered, by state",
            ["state"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            PREFIX + "webhook_deliveries",
            "Webhook delivery attempts by result",
            ["result"],
            registry=r,
        )
        self.api_last_success = Gauge(
            PREFIX + "api_last_success_timestamp_seconds",
            "Unix time of the last API success",
            registry=r,
        )
        self.api_consecutive_failures = Gauge(
            PREFIX + "api_consecutive_failures", "API failures since the last success", registry=r
        )
        self.api_auth_refused = Gauge(
            PREFIX + "api_auth_refused", "1 while the API refuses the key (401/403)", registry=r
        )
        self.leases_held = Gauge(
            PREFIX + "leases_held",
            "Watches this replica holds the lease of (replicas on PostgreSQL)",
            registry=r,
        )
        self.lease_takeovers = Counter(
            PREFIX + "lease_takeovers",
            "Leases taken from a replica whose lease had expired (it died or stalled)",
            registry=r,
        )
        self.build_info = Gauge(
            PREFIX + "build_info",
            "Always 1; the running version as a label",
            ["version"],
            registry=r,
        )
        self.build_info.labels(version=__version__).set(1)

    def observe_request(self, code: int | None, seconds: float, wall: float) -> None:
        """One API request's outcome: `code` None when no HTTP answer came."""
        self.api_requests.labels(code=code_label(code)).inc()
        self.api_duration.observe(seconds)
        h = self.health
        h.requests += 1
        if code is not None and 200 <= code < 300:
            h.last_success, h.consecutive_failures, h.auth_refused = wall, 0, False
            self.api_last_success.set(wall)
        else:
            h.consecutive_failures += 1
            h.auth_refused = code in (401, 403) or (h.auth_refused and code is None)
        self.api_consecutive_failures.set(h.consecutive_failures)
        self.api_auth_refused.set(1 if h.auth_refused else 0)
