"""Prometheus metrics of the service.

Under several worker processes, set PROMETHEUS_MULTIPROC_DIR so that /metrics adds up every process.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered.", ["method", "handler", "status"])
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from request to the end of the response.",
    ["method", "handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_REQUESTS_IN_FLIGHT = Gauge(
    "http_requests_in_flight", "HTTP requests being answered now.", multiprocess_mode="livesum"
)
ORDERS_PLACED = Counter("shop_orders_placed_total", "Orders placed.")
ORDERS_REFUSED = Counter("shop_orders_refused_total", "Orders refused by a business rule.", ["code"])
LOGINS = Counter("shop_logins_total", "Login attempts by outcome.", ["outcome"])
RATE_LIMITED = Counter("shop_rate_limited_total", "Requests refused by a rate limit.", ["limit"])
MAILS_SENT = Counter("shop_mails_sent_total", "Mails handed to the mail server (or printed, in development).", ["kind"])
MAIL_FAILURES = Counter("shop_mail_failures_total", "Mails that could not be sent, or were dropped.", ["kind"])
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "rate_limit_storage_errors_total", "Requests let through because the rate-limit storage failed."
)
# Delivery of the events to NATS JetStream. The counters count what this process's relay did (summed over
# processes). The gauges describe the database, which every process's relay reads about once a second: so every
# process reports the same truth, and under PROMETHEUS_MULTIPROC_DIR the most recent reading of a live process wins.
EVENTS_PUBLISHED = Counter("shop_events_published_total", "Events JetStream acknowledged (duplicates included).")
EVENT_PUBLISH_FAILURES = Counter(
    "shop_event_publish_failures_total", "Attempts to publish an event that got no ack from JetStream."
)
EVENTS_PENDING = Gauge(
    "shop_events_pending", "Events committed and not yet acknowledged by JetStream.", multiprocess_mode="livemostrecent"
)
OLDEST_PENDING_EVENT_AGE = Gauge(
    "shop_events_oldest_pending_age_seconds",
    "Age of the oldest event not yet acknowledged by JetStream; 0 when none waits.",
    multiprocess_mode="livemostrecent",
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def render_metrics() -> bytes:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
