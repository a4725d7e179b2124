"""Prometheus metrics of one station process (a per-app registry, so tests stay apart)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NodeMetrics:
    """The station's counters; ``/metrics`` renders :attr:`registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_pushed = Counter(
            "tongban_node_events_pushed", "Own events the parent hub took into custody", registry=r
        )
        self.events_received = Counter(
            "tongban_node_events_received", "Verified events stored from the feed", registry=r
        )
        self.events_quarantined = Counter(
            "tongban_node_events_quarantined",
            "Events set aside: refused by the hub (out) or by us (in)",
            ["direction"],
            registry=r,
        )
        self.backlog_events = Gauge(
            "tongban_node_backlog_events", "Own events not yet in the hub's custody", registry=r
        )
        self.backlog_bytes = Gauge(
            "tongban_node_backlog_bytes", "Wire bytes of the backlog events", registry=r
        )
        self.backlog_blob_bytes = Gauge(
            "tongban_node_backlog_blob_bytes", "Blob bytes the hub does not hold yet", registry=r
        )
        self.blob_bytes_sent = Counter(
            "tongban_node_blob_bytes_sent", "Blob bytes sent by tus PATCH", registry=r
        )
        self.blobs_skipped = Counter(
            "tongban_node_blobs_already_held", "Blobs the hub already held (not sent)", registry=r
        )
        self.sync_failures = Counter(
            "tongban_node_sync_failures", "Sync cycles that ended in an error", registry=r
        )
        self.sync_latency = Histogram(
            "tongban_node_sync_latency_seconds",
            "Round trip of a sync request to the parent hub",
            ["step"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.custody_latency = Histogram(
            "tongban_node_custody_latency_seconds",
            "From signing an own event to the hub's custody acknowledgement",
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600),
            registry=r,
        )
        self.overdue_cases = Gauge(
            "tongban_node_overdue_cases",
            "电子监察 cards of open cases accepted here: yellow (near the deadline), red (past it)",
            ["colour"],
            registry=r,
        )
        self.online = Gauge(
            "tongban_node_online", "1 when the last request to the parent hub succeeded", registry=r
        )
