"""Prometheus metrics of one hub app, in its own registry (several apps may share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class HubMetrics:
    """The counters, gauges and histograms ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_received = Counter(
            "tongban_hub_events_received",
            "Events taken into custody, by how they came (chain, relay, parent_feed, own).",
            ["mode"],
            registry=r,
        )
        self.events_quarantined = Counter(
            "tongban_hub_events_quarantined",
            "Events refused and set aside, by reason.",
            ["reason"],
            registry=r,
        )
        self.equivocations = Counter(
            "tongban_hub_equivocations", "Equivocations detected (two events, one seq).", registry=r
        )
        self.feed_entries = Counter(
            "tongban_hub_feed_entries", "Events put into children's feeds.", registry=r
        )
        self.blob_bytes_received = Counter(
            "tongban_hub_blob_bytes_received",
            "Blob bytes received and stored by tus PATCH requests.",
            registry=r,
        )
        self.blobs_completed = Counter(
            "tongban_hub_blobs_completed", "Blobs completed and verified.", registry=r
        )
        self.backlog_events = Gauge(
            "tongban_hub_backlog_events",
            "Events waiting to be relayed, per destination.",
            ["destination"],
            registry=r,
        )
        self.backlog_bytes = Gauge(
            "tongban_hub_backlog_bytes",
            "Wire bytes waiting to be relayed, per destination.",
            ["destination"],
            registry=r,
        )
        self.push_seconds = Histogram(
            "tongban_hub_push_seconds",
            "Time to verify, store and acknowledge one push batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.relay_failures = Counter(
            "tongban_hub_relay_failures",
            "Failed requests to the parent or a peer.",
            ["destination"],
            registry=r,
        )
        self.relay_last_success = Gauge(
            "tongban_hub_relay_last_success_timestamp_seconds",
            "When a request to the destination (parent, peer city, feed) last succeeded.",
            ["destination"],
            registry=r,
        )
        self.relay_last_error = Gauge(
            "tongban_hub_relay_last_error_timestamp_seconds",
            "When a request to the destination last failed.",
            ["destination"],
            registry=r,
        )
        self.peer_clock_skew = Gauge(
            "tongban_hub_peer_clock_skew_seconds",
            "How far a member's clock is behind this hub's (negative: ahead), from the signed"
            " Tongban-Clock header of its last request.",
            ["peer"],
            registry=r,
        )

        self.events_pushed = Counter(
            "tongban_hub_events_pushed",
            "Events the parent or a metro peer took into custody, by kind (own, relay).",
            ["kind"],
            registry=r,
        )
        self.sync_latency = Histogram(
            "tongban_hub_sync_latency_seconds",
            "Round trip of a push to the parent or a metro peer.",
            ["destination"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.blob_bytes_sent = Counter(
            "tongban_hub_blob_bytes_sent",
            "Blob bytes sent up to the parent or across to peers (tus PATCH).",
            registry=r,
        )
        self.cards = Gauge(
            "tongban_hub_overdue_cards",
            "电子监察 cards of open cases at this hub: yellow (near the deadline), red (past it).",
            ["colour"],
            registry=r,
        )
        for colour in ("yellow", "red"):
            self.cards.labels(colour).set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
