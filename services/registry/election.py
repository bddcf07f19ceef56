"""Which instance accepts writes: the one a Kafka consumer group assigns partition 0 of the election topic.

Every eligible instance joins one consumer group on a single-partition topic; the group coordinator gives
that partition to exactly one live member, which is the leader until it is revoked (the rebalance revokes
it from the old member before assigning it to a new one). The leader announces its URL as a record on the
same (compacted) topic; every instance reads the announcements, so followers know where to forward writes.
A leader that dies stops being one when its group session expires.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

log = logging.getLogger("accord_registry.election")

_KEY = b"leader"


class Election:
    def __init__(
        self, bootstrap: str, topic: str, group: str, *, my_url: str, eligible: bool, session_timeout_ms: int = 6000
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.my_url = my_url
        self.eligible = eligible
        self.instance = uuid.uuid4().hex
        self.is_leader = False
        #: whether a rebalance has assigned this member its share (maybe nothing) at least once
        self.joined = False
        self._writing = 0  # writes under way on this instance as the leader
        #: the URL the newest announcement names (possibly our own), or None before any
        self.leader_url: str | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._member: Consumer | None = None
        if eligible:
            self._member = Consumer(
                {
                    "bootstrap.servers": bootstrap,
                    "group.id": group,
                    "enable.auto.commit": False,
                    "session.timeout.ms": session_timeout_ms,
                    "heartbeat.interval.ms": max(500, session_timeout_ms // 6),
                    "max.poll.interval.ms": max(10000, session_timeout_ms * 2),
                    "partition.assignment.strategy": "range",
                }
            )
        self._watcher = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{group}-watch-unused",  # assign() only
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
            }
        )
        self._producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})

    def start(self) -> None:
        self._watcher.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        self._threads.append(threading.Thread(target=self._watch, name="registry-election-watch", daemon=True))
        if self._member is not None:
            self._member.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
            self._threads.append(threading.Thread(target=self._membership, name="registry-election", daemon=True))
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._member is not None:
            self._member.close()  # leaves the group, so another instance takes over at once
        self._watcher.close()
        self._producer.flush(2)

    def begin_write(self) -> bool:
        """Count a write as under way, if this instance leads; a revocation waits for it to end."""
        with self._changed:
            if not self.is_leader:
                return False
            self._writing += 1
            return True

    def end_write(self) -> None:
        with self._changed:
            self._writing -= 1
            self._changed.notify_all()

    def wait_for_leader(self, timeout: float) -> str | None:
        """'self' when this instance leads, the leader's URL when another does, None if none within timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if self.is_leader:
                    return "self"
                if self.leader_url is not None and self.leader_url != self.my_url:
                    return self.leader_url
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, 0.5))

    # -- threads ------------------------------------------------------------------------------

    def _membership(self) -> None:
        assert self._member is not None
        while not self._stop.is_set():
            try:
                # we never read from the partition: poll keeps the membership alive and runs the callbacks
                self._member.poll(0.2)
            except KafkaException as exc:
                log.warning("election membership: %s", exc)
                time.sleep(0.5)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        leader = any(p.partition == 0 for p in partitions)
        if leader:
            announcement = json.dumps({"url": self.my_url, "instance": self.instance, "at": time.time()})
            self._producer.produce(self.topic, key=_KEY, value=announcement.encode(), partition=0)
            self._producer.flush(10)
        with self._changed:
            self.is_leader = leader
            self.joined = True
            self._changed.notify_all()
        log.info("election: this instance (%s) is %s", self.my_url, "the leader" if leader else "a follower")

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group hands partition 0 to the next leader only after this returns, so waiting here for
        # our writes under way keeps two leaders from writing at once (a member expelled by a session
        # timeout while still alive is not fenced this way; it loses leadership at its next poll).
        with self._changed:
            if any(p.partition == 0 for p in partitions):
                self.is_leader = False
                deadline = time.monotonic() + 5.0
                while self._writing and time.monotonic() < deadline:
                    self._changed.wait(deadline - time.monotonic())
                log.info("election: leadership revoked from %s", self.my_url)
            self._changed.notify_all()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._watcher.poll(0.2)
            except KafkaException as exc:
                log.warning("election watch: %s", exc)
                time.sleep(0.5)
                continue
            if msg is None or msg.error() is not None or msg.key() != _KEY:
                continue
            try:
                url = json.loads(msg.value() or b"{}")["url"]
            except (ValueError, KeyError, TypeError):
                log.warning("election: skipping a bad announcement at offset %s", msg.offset())
                continue
            with self._changed:
                self.leader_url = str(url)
                self._changed.notify_all()
