"""`accord dlq` against a real broker: list, show, redrive (at most once), and the audit trail."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from typer.testing import CliRunner

from accord.cli import app
from accord.ops import (
    LetterRef,
    OpsError,
    read_dead_letter,
    read_dead_letters,
    read_redriven,
    read_to_end,
    redrive,
    redriven_topic,
)
from accord.runtime._dlq import H_REDRIVEN_FROM, PROVENANCE_HEADERS, Provenance, dlq_topic
from tests.integration.ops.audit_trail import audit_records

pytestmark = pytest.mark.kafka

PII = b"alice@example.com"


@dataclass
class Dlq:
    bootstrap: str
    group: str
    dlq: str
    origin: str

    @property
    def config(self) -> dict[str, str | int | float | bool]:
        return {"bootstrap.servers": self.bootstrap}


def published(dlq: Dlq) -> list[Message]:
    """What redrive has published to the origin topic, once every redrive transaction of the group is complete.

    A commit's markers reach the partitions shortly after commit_transaction() returns, and a read_committed
    reader stops before them. init_transactions() with redrive's transactional id waits for that (as the next
    redrive does before reading its markers), so nothing committed can be missed here.
    """
    barrier = Producer({**dlq.config, "transactional.id": f"accord.dlq.redrive.{dlq.group}"})
    barrier.init_transactions(30)
    barrier.close()
    return read_to_end(dlq.config, dlq.origin)


@pytest.fixture
def dlq(kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str) -> Iterator[Dlq]:
    """`<group>.dlq` holding 4 dead letters (3 with provenance, 1 without) of an origin topic of 2 partitions."""
    origin = topic_factory(partitions=2)
    name = dlq_topic(group_id)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    letters = [
        (0, 3, "DecodeError", "bad magic byte 7"),
        (1, 5, "SchemaError", "unknown schema id 42"),
        (1, 9, "DecodeError", "bad magic byte 9"),
    ]
    for i, (partition, offset, error_class, message) in enumerate(letters):
        provenance = Provenance(
            topic=origin,
            partition=partition,
            offset=offset,
            timestamp_ms=1_700_000_000_000 + i,
            group=group_id,
            error_class=error_class,
            error_message=message,
            attempts=i + 1,
            failed_at=f"2026-11-28T10:00:0{i}+00:00",
        )
        headers: list[tuple[str, str | bytes | None]] = [
            ("traceparent", f"00-{'a' * 32}-{'b' * 16}-01".encode()),
            *provenance.headers(),
        ]
        producer.produce(name, key=f"cust-{i}".encode(), value=b"\x00\x00\x00\x00\x2a" + PII, headers=headers)
    producer.produce(name, key=b"orphan", value=b"no provenance here")
    assert producer.flush(30) == 0
    yield Dlq(kafka_bootstrap, group_id, name, origin)
    for future in admin.delete_topics([name, redriven_topic(name)]).values():
        with contextlib.suppress(KafkaException):  # the markers topic exists only when a test redrove
            future.result(timeout=30)


def test_list_reads_provenance_and_limits_to_the_newest(dlq: Dlq) -> None:
    letters, total = read_dead_letters(dlq.config, dlq.dlq)
    assert total == 4
    assert [str(x.ref) for x in letters] == ["0:0", "0:1", "0:2", "0:3"]
    assert [x.provenance.error_class if x.provenance else None for x in letters] == [
        "DecodeError",
        "SchemaError",
        "DecodeError",
        None,
    ]
    first = letters[0].provenance
    assert first is not None and (first.topic, first.partition, first.offset, first.attempts) == (dlq.origin, 0, 3, 1)

    newest, _ = read_dead_letters(dlq.config, dlq.dlq, limit=2)
    assert [str(x.ref) for x in newest] == ["0:2", "0:3"]
    decode, _ = read_dead_letters(dlq.config, dlq.dlq, error_class="DecodeError")
    assert [str(x.ref) for x in decode] == ["0:0", "0:2"]


def test_show_one_and_diagnose_a_missing_one(dlq: Dlq) -> None:
    letter = read_dead_letter(dlq.config, dlq.dlq, LetterRef.parse("1"))
    assert letter.key == b"cust-1" and letter.value is not None and letter.value.endswith(PII)
    assert [k for k, _ in letter.other_headers()] == ["traceparent"]
    with pytest.raises(OpsError, match="no dead letter at"):
        read_dead_letter(dlq.config, dlq.dlq, LetterRef.parse("0:99"))
    with pytest.raises(OpsError, match="no partition 3"):
        read_dead_letter(dlq.config, dlq.dlq, LetterRef.parse("3:0"))
    with pytest.raises(OpsError, match="<partition>:<offset>"):
        LetterRef.parse("one")


def test_redrive_publishes_the_original_to_its_origin_once(dlq: Dlq) -> None:
    report = redrive(dlq.config, group=dlq.group, refs=[LetterRef(0, 1)], who="tester")
    assert [(str(i.letter.ref), i.outcome) for i in report.items] == [("0:1", "redriven")]

    records = published(dlq)
    assert len(records) == 1
    record = records[0]
    assert record.partition() == 1  # the partition it came from
    assert record.key() == b"cust-1" and record.value() == b"\x00\x00\x00\x00\x2a" + PII
    headers = dict(record.headers() or [])
    assert headers[H_REDRIVEN_FROM] == f"{dlq.dlq}:0:1".encode()
    assert "traceparent" in headers  # the record's own headers travel with it
    assert not set(PROVENANCE_HEADERS) & set(headers)

    again = redrive(dlq.config, group=dlq.group, refs=[LetterRef(0, 1)], who="tester")
    assert [i.outcome for i in again.items] == ["already redriven"]
    assert len(published(dlq)) == 1
    assert read_redriven(dlq.config, dlq.dlq) == {f"{dlq.dlq}:0:1"}


def test_redrive_all_twice_publishes_each_once_and_skips_letters_without_provenance(dlq: Dlq) -> None:
    first = redrive(dlq.config, group=dlq.group, all_letters=True, who="tester")
    assert first.count("redriven") == 3 and first.count("no provenance") == 1
    second = redrive(dlq.config, group=dlq.group, all_letters=True, who="tester")
    assert second.count("redriven") == 0 and second.count("already redriven") == 3

    records = published(dlq)
    assert sorted((m.key() or b"").decode() for m in records) == ["cust-0", "cust-1", "cust-2"]


def test_two_operators_redriving_at_once_publish_each_letter_once(dlq: Dlq) -> None:
    def attempt() -> str:
        try:
            return redrive(dlq.config, group=dlq.group, all_letters=True, who="tester").summary()
        except OpsError as exc:  # fenced by the other one: rolled back, nothing published
            return f"rolled back: {exc}"

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(2)))
    assert any(o.startswith("redrove 3") for o in outcomes), outcomes
    records = published(dlq)
    assert sorted((m.key() or b"").decode() for m in records) == ["cust-0", "cust-1", "cust-2"]


def test_redrive_by_error_class_and_dry_run(dlq: Dlq) -> None:
    dry = redrive(dlq.config, group=dlq.group, error_class="DecodeError", dry_run=True, who="tester")
    assert [(str(i.letter.ref), i.outcome) for i in dry.items] == [("0:0", "would redrive"), ("0:2", "would redrive")]
    assert published(dlq) == []
    topics = AdminClient(dict(dlq.config)).list_topics(timeout=15).topics
    assert redriven_topic(dlq.dlq) not in topics  # a dry run creates nothing either

    report = redrive(dlq.config, group=dlq.group, error_class="DecodeError", who="tester")
    assert report.count("redriven") == 2
    assert sorted((m.key() or b"").decode() for m in published(dlq)) == ["cust-0", "cust-2"]

    missing = redrive(dlq.config, group=dlq.group, refs=[LetterRef(0, 42), LetterRef(5, 0)], who="tester")
    assert missing.items == [] and missing.missing == [LetterRef(0, 42), LetterRef(5, 0)]
    with pytest.raises(OpsError, match="exactly one of"):
        redrive(dlq.config, group=dlq.group, all_letters=True, error_class="X", who="tester")


def test_redrive_names_letters_whose_origin_topic_is_gone(dlq: Dlq) -> None:
    gone = Provenance(
        f"gone-{uuid.uuid4().hex[:8]}", 0, 1, None, dlq.group, "Gone", "m", 1, "2026-11-28T10:00:00+00:00"
    )
    producer = Producer(dlq.config)
    headers: list[tuple[str, str | bytes | None]] = [*gone.headers()]
    producer.produce(dlq.dlq, key=b"k", value=b"v", headers=headers)
    assert producer.flush(30) == 0

    report = redrive(dlq.config, group=dlq.group, error_class="Gone", who="tester")
    assert [i.outcome for i in report.items] == ["origin topic missing"]
    assert "whose origin topic no longer exists" in report.summary()
    assert read_redriven(dlq.config, dlq.dlq) == set()


def test_cli_list_show_redrive_never_print_values_and_are_audited(dlq: Dlq, monkeypatch: pytest.MonkeyPatch) -> None:
    who = f"op-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", dlq.bootstrap)
    monkeypatch.setenv("ACCORD_OPERATOR", who)
    runner = CliRunner()
    env = {"COLUMNS": "250"}

    listed = runner.invoke(app, ["dlq", "list", "--group", dlq.group], env=env)
    assert listed.exit_code == 0, listed.output
    assert "SchemaError" in listed.output and "unknown schema id 42" in listed.output
    assert "4 dead letter(s) shown of about 4" in listed.output

    shown = runner.invoke(app, ["dlq", "show", "--topic", dlq.dlq, "--offset", "0:1"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "alice" not in shown.output and PII.hex(" ")[:20] in shown.output
    assert "value schema id" in shown.output and " 42 " in shown.output

    redriven = runner.invoke(app, ["dlq", "redrive", "--group", dlq.group, "--offset", "2"], env=env)
    assert redriven.exit_code == 0, redriven.output
    assert "redrove 1 dead letter(s)" in redriven.output

    bad = runner.invoke(app, ["dlq", "list", "--topic", "billing.invoices"], env=env)
    assert isinstance(bad.exception, OpsError) and "not a dead-letter topic" in str(bad.exception)

    mine = audit_records(dlq.bootstrap, who, 3)
    assert [r["what"] for r in mine] == ["dlq.list", "dlq.show", "dlq.redrive"]
    assert mine[2]["args"]["offsets"] == ["0:2"] and "redrove 1" in mine[2]["result"]
    assert all(PII.decode() not in json.dumps(r) for r in mine)
