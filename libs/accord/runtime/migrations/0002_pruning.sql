-- Idempotency retention. `handled_offsets` is the highest offset per partition that a consumer has handled
-- (applied, deduplicated, parked or dead-lettered), written in each batch's transaction. When old
-- processed-event ids are pruned, the handled offsets of that moment become `pruned_watermarks`: a replay
-- reaching back to or below them is skipped by offset, because the ids that would have caught its
-- duplicates may be gone. So a replay never applies an event twice, inside the retention window or beyond.
CREATE TABLE handled_offsets (
    consumer        text    NOT NULL,
    topic           text    NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint  NOT NULL,
    PRIMARY KEY (consumer, topic, kafka_partition)
);

CREATE TABLE pruned_watermarks (
    consumer        text    NOT NULL,
    topic           text    NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint  NOT NULL,
    PRIMARY KEY (consumer, topic, kafka_partition)
);
