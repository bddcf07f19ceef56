"""Apache Kafka 4.x, single-node KRaft (broker and controller in one JVM), from Maven Central jars."""

from __future__ import annotations

import base64
import fcntl
import os
import re
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from ._base import Health, PartRecord, StackError, free_port, require_tool, spawn, terminate, wait_until
from ._paths import cache_dir, repo_root

DEFAULT_KAFKA_VERSION = "4.4.0"
_JAVA_HINT = "apt-get install openjdk-17-jre-headless maven"

_LOG4J2 = """\
Configuration:
  Appenders:
    File:
      name: file
      fileName: "{log}"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: WARN
"""


def kafka_jars(version: str, *, progress: bool = True) -> Path:
    """The broker's jars for `version`, fetched once with Maven into the user cache and reused after.

    The published POM lacks the SLF4J binding that the release tarball adds, so deploy/local/kafka-pom.xml
    names log4j-slf4j-impl and log4j-api/core beside kafka_2.13.
    """
    target = cache_dir() / f"kafka-{version}"
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = require_tool("kafka", "mvn", _JAVA_HINT)
    pom = repo_root() / "deploy" / "local" / "kafka-pom.xml"
    if not pom.exists():
        raise StackError("kafka", f"{pom} is missing; run accord from its source checkout")
    target.mkdir(parents=True, exist_ok=True)
    # Two test sessions starting together must not both write the same folder.
    with (cache_dir() / f".kafka-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return target
        if progress:
            print(
                f"kafka: fetching Apache Kafka {version} jars with Maven into {target} (first run only)",
                flush=True,
            )
        started = time.monotonic()
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                f"-Dkafka.version={version}",
                f"-DoutputDirectory={target}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(
                "kafka", f"mvn could not fetch Kafka {version}:\n{(result.stdout + result.stderr)[-2000:]}"
            )
        if not any(target.glob(f"kafka_2.13-{version}.jar")):
            raise StackError("kafka", f"mvn finished but kafka_2.13-{version}.jar is not in {target}")
        marker.write_text(f"{time.monotonic() - started:.1f}s\n")
    return target


def _cluster_id() -> str:
    # Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding (Uuid.randomUuid()).
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class KafkaPart:
    name = "kafka"
    external_env: str | None = "KAFKA_BOOTSTRAP_SERVERS"
    compose_port: int | None = 9092

    def __init__(self, version: str | None = None, heap: str = "512m") -> None:
        self.version = version or os.environ.get("ACCORD_KAFKA_VERSION", DEFAULT_KAFKA_VERSION)
        self.heap = heap

    def start(self, home: Path, env: Mapping[str, str]) -> PartRecord:
        java = require_tool(self.name, "java", _JAVA_HINT)
        jars = kafka_jars(self.version)
        workdir = home / "kafka"
        data = workdir / "data"
        port, controller_port = free_port(), free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        props = workdir / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    # The 4.x dynamic quorum: formatted with --standalone below.
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
                    f"log.dirs={data}",
                    "num.partitions=3",
                    # One node: every internal topic has one replica.
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # Tests create many consumer groups; the default 3 s join delay would dominate them.
                    "group.initial.rebalance.delay.ms=0",
                    # The cleaner's default 128 MiB buffer does not fit a small heap.
                    "log.cleaner.dedupe.buffer.size=8388608",
                    "auto.create.topics.enable=false",
                    "",
                ]
            )
        )
        log4j = workdir / "log4j2.yaml"
        server_log = workdir / "server.log"
        log4j.write_text(_LOG4J2.format(log=server_log))
        classpath = f"{jars}/*"
        jvm = [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            classpath,
        ]
        if not (data / "meta.properties").exists():
            fmt = subprocess.run(
                [
                    *jvm,
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    # `=` form: a random id may start with "-", which argparse would take for an option.
                    f"--cluster-id={_cluster_id()}",
                    "-c",
                    str(props),
                ],
                capture_output=True,
                text=True,
            )
            if fmt.returncode != 0:
                raise StackError(
                    self.name, f"formatting the KRaft log dir failed:\n{(fmt.stdout + fmt.stderr)[-2000:]}"
                )
        pid, started = spawn(self.name, [*jvm, "kafka.Kafka", str(props)], log=workdir / "stdout.log")
        address = f"127.0.0.1:{port}"
        return PartRecord(
            name=self.name,
            address=address,
            env={"KAFKA_BOOTSTRAP_SERVERS": address},
            pid=pid,
            pid_started_at=started,
            log=str(server_log),
            extra={"controller": f"127.0.0.1:{controller_port}"},
        )

    def wait_ready(self, record: PartRecord, timeout: float) -> None:
        wait_until(record, lambda: self.health(record).healthy, timeout, "metadata request not answered")
        record.version = self._version(record)

    def health(self, record: PartRecord) -> Health:
        from confluent_kafka.admin import AdminClient

        # log_level 0: "connection refused" while the broker starts is expected, not worth a line each.
        admin = AdminClient({"bootstrap.servers": record.address, "socket.timeout.ms": 1000, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=1.5)
        except Exception as exc:  # KafkaException: broker not (yet) answering
            return Health(False, f"no metadata: {exc}")
        return Health(True, f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)")

    def external(self, value: str) -> PartRecord:
        return PartRecord(name=self.name, address=value, env={"KAFKA_BOOTSTRAP_SERVERS": value}, external=True)

    def stop(self, record: PartRecord, timeout: float) -> None:
        # SIGTERM is a controlled shutdown; a single-node KRaft broker finishes in a few seconds.
        terminate(record, timeout)

    @staticmethod
    def _version(record: PartRecord) -> str | None:
        if record.log is None:
            return None
        try:
            match = re.search(r"Kafka version: (\S+)", Path(record.log).read_text(errors="replace"))
        except OSError:
            return None
        return match.group(1) if match else None
