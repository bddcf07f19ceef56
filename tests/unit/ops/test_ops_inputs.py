"""Operator input parsing and the Kafka settings pass-through: pure, no broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accord.cli.dlq import choose_topic, hexdump, wire_schema_id
from accord.cli.replay import choose_target, parse_time
from accord.errors import ConfigurationError
from accord.kafka_config import bootstrap_servers, client_config, client_properties
from accord.ops import LetterRef, OpsError, PartitionMove, ReplayPlan, ReplayResult, ToEarliest, ToOffset, ToTime

pytestmark = pytest.mark.unit


def test_accord_kafka_variables_become_librdkafka_properties() -> None:
    env = {
        "ACCORD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "ACCORD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "ACCORD_KAFKA_SASL_USERNAME": "svc",
        "ACCORD_KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
        "ACCORD_KAFKA_VERSION": "4.4.0",  # the local stack's setting, not a client property
        "ACCORD_HOME": "/tmp/x",
        "KAFKA_BOOTSTRAP_SERVERS": "b1:9092,b2:9092",
    }
    assert client_properties(env) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "ssl.ca.location": "/etc/ca.pem",
    }
    config = client_config({"enable.idempotence": True, "sasl.username": "override"}, environ=env)
    assert config["bootstrap.servers"] == "b1:9092,b2:9092"
    assert config["enable.idempotence"] is True and config["sasl.username"] == "override"


def test_no_broker_anywhere_is_a_diagnosis(tmp_path: object) -> None:
    with pytest.raises(ConfigurationError, match="KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap_servers({"ACCORD_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("text", "ref"),
    [("42", LetterRef(0, 42)), ("3:7", LetterRef(3, 7)), ("0:0", LetterRef(0, 0))],
)
def test_dead_letter_names(text: str, ref: LetterRef) -> None:
    assert LetterRef.parse(text) == ref
    assert str(ref) == f"{ref.partition}:{ref.offset}"


@pytest.mark.parametrize("text", ["", "x", "1:x", "-1", "1:-2", "1:2:3"])
def test_bad_dead_letter_names_say_the_form(text: str) -> None:
    with pytest.raises(OpsError, match=r"<partition>:<offset>|0 or more"):
        LetterRef.parse(text)


def test_replay_targets() -> None:
    assert choose_target(5, None, False) == ToOffset(5)
    assert choose_target(None, None, True) == ToEarliest()
    assert choose_target(None, "2026-11-28T09:30:00Z", False) == ToTime(datetime(2026, 11, 28, 9, 30, tzinfo=UTC))
    for args in [(None, None, False), (1, None, True), (1, "2026-01-01T00:00:00Z", False)]:
        with pytest.raises(OpsError, match="exactly one of"):
            choose_target(*args)
    with pytest.raises(OpsError, match="no time zone"):
        parse_time("2026-11-28T09:30:00")
    with pytest.raises(OpsError, match="ISO 8601"):
        parse_time("yesterday")


def test_dead_letter_topic_choice() -> None:
    assert choose_topic("billing-connector", None) == "billing-connector.dlq"
    assert choose_topic(None, "x.dlq") == "x.dlq"
    with pytest.raises(OpsError, match="exactly one of"):
        choose_topic("g", "g.dlq")
    with pytest.raises(OpsError, match="not a dead-letter topic"):
        choose_topic(None, "billing.invoices")


def test_values_are_shown_as_hex_and_schema_id_only() -> None:
    value = b"\x00\x00\x00\x01\x2a" + b"alice@example.com"
    assert wire_schema_id(value) == "298"
    assert wire_schema_id(b"{}") == "-"
    assert "not Confluent" in wire_schema_id(b'{"a": 1}')
    assert "alice" not in hexdump(value, None)
    assert hexdump(value, 4) == "00 00 00 01 … (18 more bytes)"
    assert hexdump(None, 4) == "(null)"


def test_replay_summary_counts_moves_and_refusals() -> None:
    plan = ReplayPlan(
        "g",
        "t",
        ToEarliest(),
        "EMPTY",
        (),
        (PartitionMove(0, 10, 0, 0, 10), PartitionMove(1, None, 0, 0, 4), PartitionMove(2, 0, 0, 0, 3)),
    )
    assert ReplayResult(plan, False, plan.moves).summary() == (
        "group 'g' on 't' to earliest: 2 of 3 partition(s) would move, +14 record(s) to re-read (nothing changed)"
    )
    refused = (PartitionMove(0, 10, 0, 0, 10, error="UNKNOWN_MEMBER_ID"), *plan.moves[1:])
    assert ReplayResult(plan, True, refused).summary().endswith("1 partition(s) refused by the broker")
