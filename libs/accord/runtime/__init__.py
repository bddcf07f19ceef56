"""The service runtime: consume → decide → one PostgreSQL transaction → commit offsets, and around it the
outbox relay, retries and parking, dead letters, tracing, metrics and a clean shutdown.

A service is pure data (`Service`: topics and handlers); the runtime does the I/O. See `_consumer.py`
for the order of the steps, which is the guarantee.
"""

from ._consumer import BatchResult, DeadLetter, Outcome, RetryPolicy, Runtime, consumer_config
from ._dlq import H_REDRIVEN_FROM, PROVENANCE_HEADERS, Provenance, dlq_topic
from ._host import RuntimeSettings, ServiceHost, run, schema_name, setup_logging
from ._model import CommandSpec, Decision, DecodeError, Envelope, EventCodec, Handler, Outgoing, Service, event_identity
from ._process import ensure_topic, every, load_settings
from ._relay import OutboxRelay, producer_config
from ._store import MemoryStore, OutboxRow, ParkedRow, PostgresStore, Store, UnitOfWork, Writes
from ._tracing import context_from_headers, setup_tracing, traceparent_of

__all__ = [
    "H_REDRIVEN_FROM",
    "PROVENANCE_HEADERS",
    "BatchResult",
    "CommandSpec",
    "DeadLetter",
    "Decision",
    "DecodeError",
    "Envelope",
    "EventCodec",
    "Handler",
    "MemoryStore",
    "OutboxRelay",
    "OutboxRow",
    "Outcome",
    "Outgoing",
    "ParkedRow",
    "PostgresStore",
    "Provenance",
    "RetryPolicy",
    "Runtime",
    "RuntimeSettings",
    "Service",
    "ServiceHost",
    "Store",
    "UnitOfWork",
    "Writes",
    "consumer_config",
    "context_from_headers",
    "dlq_topic",
    "ensure_topic",
    "event_identity",
    "every",
    "load_settings",
    "producer_config",
    "run",
    "schema_name",
    "setup_logging",
    "setup_tracing",
    "traceparent_of",
]
