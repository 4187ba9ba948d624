"""Prometheus metrics of the service (``GET /metrics``, text exposition format).

Counters and histograms are recorded where the work happens: HTTP requests
by the request middleware (:mod:`api.observability`), deposits, seals,
anchoring failures and stored blobs through the ledger's
:class:`~ledger.observe.Observer`. Gauges (tree size, unpublished entries,
capture jobs) are read from the database when scraped, so every worker and
every host reports the same figures.

Several uvicorn workers report together in prometheus-client's multiprocess
mode: ``evidence-ledger serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh directory before any worker starts, each worker writes its counters
there, and whichever process answers a scrape adds them all up. The
variable must be set before ``prometheus_client`` is first imported (it
picks its value store then); without it, one process reports its own.
"""

from __future__ import annotations

import logging
import os
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ledger.errors import LedgerError
from ledger.events import Draft
from ledger.observe import Observer
from ledger.services import Services

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROC_ENV",
    "LedgerCollector",
    "Metrics",
    "exposition",
    "multiprocess_dir",
    "serve_metrics",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CAPTURE_STATUSES = ("queued", "running")
"""Capture job states always exported (0 when none); others appear once a job has them."""

# Hash deposits answer in about a millisecond; uploads and captures take longer.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
SEAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

log = logging.getLogger("evidence_ledger.metrics")


def multiprocess_dir() -> str | None:
    """The multiprocess directory in use, or None (one process reports alone)."""
    return os.environ.get(MULTIPROC_ENV) or None


class LedgerCollector(Collector):
    """Gauges read from the ledger's database at each scrape."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterable[Metric]:
        try:
            fig = self._services.operations.figures()
        except LedgerError as e:
            # The scrape still answers (HTTP metrics, counters); readiness reports why.
            log.warning("metrics: the database did not answer: %s", e)
            return
        yield GaugeMetricFamily(
            "evidence_ledger_tree_size",
            "Entries in the Merkle tree of the latest sealed checkpoint.",
            value=fig.checkpoint_size,
        )
        yield GaugeMetricFamily(
            "evidence_ledger_log_entries", "Durable entries in the log.", value=fig.size
        )
        yield GaugeMetricFamily(
            "evidence_ledger_unpublished_entries",
            "Durable entries not yet covered by a published checkpoint.",
            value=fig.unpublished,
        )
        jobs = GaugeMetricFamily(
            "evidence_ledger_capture_jobs", "Capture jobs by status.", labels=["status"]
        )
        for status in sorted({*CAPTURE_STATUSES, *fig.capture_jobs}):
            jobs.add_metric([status], fig.capture_jobs.get(status, 0))
        yield jobs


class Metrics(Observer):
    """The service's metrics: recorded by this process, exposed with every worker's.

    Also the ledger's :class:`~ledger.observe.Observer`. Each instance has its
    own registry, so services built in one process (tests) do not share counts
    unless they share a multiprocess directory.
    """

    def __init__(self, services: Services) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.http = Histogram(
            "evidence_ledger_http_request_duration_seconds",
            "HTTP requests by route template, method and status, and their duration.",
            ["route", "method", "status"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.deposits = Counter(
            "evidence_ledger_deposits", "Durable evidence deposits by kind.", ["kind"], registry=r
        )
        self.seal = Histogram(
            "evidence_ledger_seal_duration_seconds",
            "Time to integrate a batch of entries and store its signed checkpoint.",
            buckets=SEAL_BUCKETS,
            registry=r,
        )
        self.witness_failures = Counter(
            "evidence_ledger_witness_failures",
            "Anchoring rounds in which a witness gave no valid cosignature.",
            ["witness"],
            registry=r,
        )
        self.tsa_failures = Counter(
            "evidence_ledger_tsa_failures",
            "Anchoring rounds in which a TSA gave no valid timestamp token.",
            ["tsa"],
            registry=r,
        )
        self.blob_bytes = Counter(
            "evidence_ledger_blob_bytes",
            "Bytes of evidence content committed to the blob store.",
            registry=r,
        )
        self._http_children: dict[tuple[str, str, int], Histogram] = {}
        self.exposed = exposition(services, self.registry)

    # -- recording -------------------------------------------------------
    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (``route`` is a template, never a raw path)."""
        key = (route, method, status)
        child = self._http_children.get(key)
        if child is None:
            child = self.http.labels(route, method, str(status))
            self._http_children[key] = child
        child.observe(seconds)

    def appended(self, drafts: Sequence[Draft]) -> None:
        kinds = Tally(str(d.body.get("kind")) for d in drafts if d.type == "evidence.deposited")
        for kind, n in kinds.items():
            self.deposits.labels(kind).inc(n)

    def sealed(self, seconds: float, size: int) -> None:
        self.seal.observe(seconds)

    def anchor_failed(self, kind: str, name: str) -> None:
        (self.tsa_failures if kind == "tsa" else self.witness_failures).labels(name).inc()

    def blob_stored(self, size: int) -> None:
        self.blob_bytes.inc(size)

    # -- exposition ------------------------------------------------------
    def render(self) -> bytes:
        """Every metric, of every worker, in the Prometheus text format."""
        return generate_latest(self.exposed)


def exposition(services: Services, own: CollectorRegistry | None = None) -> CollectorRegistry:
    """What a scrape shows: every worker's metrics (multiprocess mode) or ``own``,
    and the ledger's gauges."""
    exposed = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path is not None:
        MultiProcessCollector(exposed, path)  # type: ignore[no-untyped-call]
    elif own is not None:
        exposed.register(_Forward(own))
    exposed.register(LedgerCollector(services))
    return exposed


def serve_metrics(host: str, port: int, services: Services) -> WSGIServer:
    """Serve ``/metrics`` of every worker on ``host:port`` from a thread of this
    process (``serve --metrics HOST:PORT``); shut it down to stop."""
    server, _ = start_http_server(port, host, registry=exposition(services))
    return server


class _Forward(Collector):
    """Exposes another registry's metrics next to the ledger's gauges."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
