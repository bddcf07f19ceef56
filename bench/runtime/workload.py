"""The workload every contender runs: invoice-issued events in, one journal request out per invoice.

Per event: decode the Confluent-framed Avro value with `accord.serde.EventCodec`, skip it if its event id is
already in the idempotency table, add the invoice to its account's state row, and write the encoded
`JournalRequested` that books it (debit receivables, credit revenue and tax) as an outbox row. `decide` is
the one pure function all contenders share, so they differ only in the I/O around it.

The tables are the runtime's own (`processed_events`, `aggregate_state`, `outbox`, created by
`PostgresStore.migrate` in a schema per run), so the hand-written contenders write exactly the rows the
runtime writes.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import asyncpg
import fastavro
from confluent_kafka import Producer

from accord.events import (
    InvoiceIssued,
    JournalLine,
    JournalRequested,
    JournalSide,
    Money,
    SourceDocumentType,
    SourceSystem,
    new_meta,
)
from accord.events.samples import sample_event
from accord.serde import EventCodec

AGGREGATE = "account"
LINES_PER_INVOICE = 3


def invoice_template() -> dict[str, Any]:
    """The Avro datum of a valid invoice with a few lines, each taxed once (about 1 kB on the wire)."""
    datum = sample_event(InvoiceIssued).to_avro()
    line = datum["lines"][0]
    datum["lines"] = []
    for n in range(LINES_PER_INVOICE):
        more = copy.deepcopy(line)
        more["line_id"] = f"line-{n + 1}"
        more["description"] = f"Platform subscription, tier {n + 1}, monthly"
        datum["lines"].append(more)
    datum["meta"]["legal_entity"] = "FR01"
    InvoiceIssued.from_avro(datum)  # the template must be a valid event, or every contender fails alike
    return datum


def invoice_values(codec: EventCodec, topic: str, count: int, accounts: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `count` distinct invoices over `accounts` accounts, in Confluent's wire format.

    Written with fastavro directly from one template (the codec's schema id, magic byte and Avro body are
    exactly what `codec.encode` writes) so that preparing 200k events takes seconds, not a minute.
    """
    header = struct.pack(">bI", 0, codec.schema_id(topic, InvoiceIssued))
    schema = fastavro.parse_schema(json.loads(InvoiceIssued.SCHEMA))
    datum = invoice_template()
    for i in range(count):
        account = f"acct-{i % accounts:05d}"
        datum["meta"]["event_id"] = uuid.uuid4()
        datum["meta"]["source_id"] = f"evt-{i}"
        datum["meta"]["entity_version"] = i // accounts + 1
        datum["account_id"] = account
        datum["invoice_id"] = f"in_{i:08d}"
        datum["invoice_number"] = f"INV-2026-{i:08d}"
        out = io.BytesIO()
        out.write(header)
        fastavro.schemaless_writer(out, schema, datum)
        yield account.encode(), out.getvalue()


def produce_input(bootstrap: str, codec: EventCodec, topic: str, count: int, accounts: int) -> int:
    """Write the input topic; returns the bytes written (values only)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000})
    size = 0
    for key, value in invoice_values(codec, topic, count, accounts):
        size += len(value)
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(60):
        raise RuntimeError(f"could not write the {count} input events to {topic}")
    return size


def read_invoice(codec: EventCodec, topic: str, value: bytes) -> InvoiceIssued:
    """One record value decoded by the codec; the input topic holds invoices only."""
    event = codec.decode(topic, value).event
    if not isinstance(event, InvoiceIssued):
        raise TypeError(f"expected an InvoiceIssued on {topic}, got {type(event).__name__}")
    return event


# -- the pure decision ---------------------------------------------------------------------------------


def decide(state: dict[str, Any] | None, invoice: InvoiceIssued) -> tuple[dict[str, Any], JournalRequested]:
    """The account's new state and the journal entry that books the invoice (debits = credits)."""
    state = dict(state or {"invoices": 0, "billed": "0", "currency": invoice.total.currency})
    state["invoices"] += 1
    state["billed"] = str(Decimal(state["billed"]) + invoice.total.amount)
    state["last_invoice_id"] = invoice.invoice_id
    event_id = invoice.meta.event_id
    entity = invoice.meta.legal_entity or "FR01"
    journal = JournalRequested(
        meta=new_meta(
            JournalRequested,
            source_system=SourceSystem.ACCORD,
            source_id=invoice.invoice_id,
            correlation_id=invoice.meta.correlation_id,
            causation_id=str(event_id),
            legal_entity=entity,
            entity_version=1,
            event_id=uuid.uuid5(event_id, "journal"),
        ),
        legal_entity=entity,
        source_document_id=invoice.invoice_id,
        journal_request_id=f"jr-{invoice.invoice_id}",
        source_document_type=SourceDocumentType.INVOICE,
        account_id=invoice.account_id,
        accounting_date=invoice.issue_date,
        lines=[
            _line(1, "411000", JournalSide.DEBIT, invoice.total),
            _line(2, "706000", JournalSide.CREDIT, invoice.subtotal),
            _line(3, "445710", JournalSide.CREDIT, invoice.tax_total),
        ],
    )
    return state, journal


def _line(n: int, account: str, side: JournalSide, money: Money) -> JournalLine:
    return JournalLine(line_no=n, gl_account=account, side=side, amount=money, memo=None, dimensions={})


# -- the database work of one batch, as a competent hand-written loop does it ---------------------------


async def apply_batch(
    conn: asyncpg.Connection,
    schema: str,
    consumer: str,
    codec: EventCodec,
    out_topic: str,
    records: Sequence[tuple[str, int, int, bytes]],
) -> int:
    """Decode, dedupe, decide and write one batch in ONE transaction; returns the events applied.

    `records` are (topic, partition, offset, value). Used by contenders (b) and (e).
    """
    decoded = [(t, p, o, read_invoice(codec, t, v)) for t, p, o, v in records]
    async with conn.transaction():
        ids = [str(e.meta.event_id) for *_, e in decoded]
        done = {
            r[0]
            for r in await conn.fetch(
                f"SELECT event_id::text FROM {schema}.processed_events"
                " WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
                consumer,
                ids,
            )
        }
        keys = list({e.account_id for *_, e in decoded})
        states: dict[str, Any] = {
            r[0]: json.loads(r[1])
            for r in await conn.fetch(
                f"SELECT key, data FROM {schema}.aggregate_state WHERE aggregate = $1 AND key = ANY($2::text[])",
                AGGREGATE,
                keys,
            )
        }
        processed: list[tuple[str, str, int, int]] = []
        changed: dict[str, Any] = {}
        outbox: list[tuple[str, bytes, bytes]] = []
        for (topic, partition, offset, event), event_id in zip(decoded, ids, strict=True):
            if event_id in done:
                continue
            done.add(event_id)
            state, journal = decide(states.get(event.account_id), event)
            states[event.account_id] = changed[event.account_id] = state
            processed.append((event_id, topic, partition, offset))
            outbox.append((out_topic, journal.key().encode(), codec.encode(out_topic, journal)))
        if processed:
            await conn.execute(
                f"""INSERT INTO {schema}.processed_events (consumer, event_id, topic, kafka_partition, kafka_offset)
                    SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[])""",
                consumer,
                *map(list, zip(*processed, strict=True)),
            )
            await conn.execute(
                f"""INSERT INTO {schema}.aggregate_state (aggregate, key, version, data)
                    SELECT $1, k, 1, d FROM unnest($2::text[], $3::jsonb[]) AS t(k, d)
                    ON CONFLICT (aggregate, key) DO UPDATE
                    SET data = excluded.data, version = aggregate_state.version + 1, updated_at = now()""",
                AGGREGATE,
                list(changed),
                [json.dumps(v, separators=(",", ":")) for v in changed.values()],
            )
            await conn.execute(
                f"""INSERT INTO {schema}.outbox (topic, key, value)
                    SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[])""",
                *map(list, zip(*outbox, strict=True)),
            )
    return len(processed)


async def apply_one(
    conn: asyncpg.Connection,
    schema: str,
    consumer: str,
    codec: EventCodec,
    out_topic: str,
    record: tuple[str, int, int, bytes],
) -> bool:
    """The naive way: the same work for ONE event in its own transaction. Used by contender (d)."""
    topic, partition, offset, value = record
    event = read_invoice(codec, topic, value)
    event_id = str(event.meta.event_id)
    async with conn.transaction():
        if await conn.fetchval(
            f"SELECT 1 FROM {schema}.processed_events WHERE consumer = $1 AND event_id = $2::uuid", consumer, event_id
        ):
            return False
        data = await conn.fetchval(
            f"SELECT data FROM {schema}.aggregate_state WHERE aggregate = $1 AND key = $2", AGGREGATE, event.account_id
        )
        state, journal = decide(json.loads(data) if data is not None else None, event)
        await conn.execute(
            f"""INSERT INTO {schema}.processed_events (consumer, event_id, topic, kafka_partition, kafka_offset)
                VALUES ($1, $2::uuid, $3, $4, $5)""",
            consumer,
            event_id,
            topic,
            partition,
            offset,
        )
        await conn.execute(
            f"""INSERT INTO {schema}.aggregate_state (aggregate, key, version, data) VALUES ($1, $2, 1, $3::jsonb)
                ON CONFLICT (aggregate, key) DO UPDATE
                SET data = excluded.data, version = aggregate_state.version + 1, updated_at = now()""",
            AGGREGATE,
            event.account_id,
            json.dumps(state, separators=(",", ":")),
        )
        await conn.execute(
            f"INSERT INTO {schema}.outbox (topic, key, value) VALUES ($1, $2, $3)",
            out_topic,
            journal.key().encode(),
            codec.encode(out_topic, journal),
        )
    return True
