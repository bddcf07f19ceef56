"""`python -m accord_registry --host 127.0.0.1 --port 8081`: run one registry instance."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from confluent_kafka import KafkaException
from pydantic import ValidationError

from .service import create_app, prepare_topics
from .settings import RegistrySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m accord_registry",
        description="accord's schema registry (Confluent REST API v1). Other settings: ACCORD_REGISTRY_* and "
        "KAFKA_BOOTSTRAP_SERVERS in the environment.",
    )
    parser.add_argument("--host", help="address to listen on (ACCORD_REGISTRY_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (ACCORD_REGISTRY_PORT, default 8081)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = RegistrySettings(**overrides)
    except ValidationError as exc:
        print(f"accord_registry: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    try:
        prepare_topics(settings)
    except KafkaException as exc:
        print(
            f"accord_registry: cannot use Kafka at {settings.kafka_bootstrap_servers} ({exc.args[0].str()}); "
            "check that the broker runs and that KAFKA_BOOTSTRAP_SERVERS points at it",
            file=sys.stderr,
        )
        return 1
    logging.getLogger("httpx").setLevel(logging.WARNING)  # forwarded writes would log a line each
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
        # the C parser and loop: GET /schemas/ids/{id} is served several times faster than with h11/asyncio
        http="httptools",
        loop="uvloop",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
