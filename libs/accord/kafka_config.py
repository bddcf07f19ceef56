"""Kafka client settings from the environment, the same for every accord client (runtime, CLI, tools).

- `KAFKA_BOOTSTRAP_SERVERS`, else the running local stack's broker (`accord dev up`);
- every `ACCORD_KAFKA_<NAME>` passes through as the librdkafka property `<name>` with `_` read as `.`:
  `ACCORD_KAFKA_SECURITY_PROTOCOL=SASL_SSL` → `security.protocol`, `ACCORD_KAFKA_SASL_MECHANISM` →
  `sasl.mechanism`, `ACCORD_KAFKA_SASL_USERNAME`, `ACCORD_KAFKA_SASL_PASSWORD`, `ACCORD_KAFKA_SSL_CA_LOCATION`…

Values are never logged: SASL passwords and key passwords travel through here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from accord.errors import ConfigurationError

PREFIX = "ACCORD_KAFKA_"

#: ACCORD_KAFKA_* variables that configure accord itself, not the client
#: (ACCORD_KAFKA_VERSION picks the broker version the local stack downloads).
NOT_CLIENT_SETTINGS = frozenset({"ACCORD_KAFKA_VERSION"})


def client_properties(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The librdkafka properties named by `ACCORD_KAFKA_*` variables (security, SASL, TLS, client id…)."""
    env = os.environ if environ is None else environ
    properties = {}
    for name, value in env.items():
        if not name.startswith(PREFIX) or name in NOT_CLIENT_SETTINGS:
            continue
        suffix = name[len(PREFIX) :]
        if not suffix:
            continue
        properties[suffix.lower().replace("_", ".")] = value
    return properties


def bootstrap_servers(environ: Mapping[str, str] | None = None) -> str:
    """KAFKA_BOOTSTRAP_SERVERS, else the running local stack's broker."""
    env = os.environ if environ is None else environ
    value = env.get("KAFKA_BOOTSTRAP_SERVERS")
    if not value:
        from accord.devstack import Stack  # imported late: the stack is only the fallback

        home = env.get("ACCORD_HOME")
        value = Stack(Path(home) if home else None, environ=env).env().get("KAFKA_BOOTSTRAP_SERVERS")
    if not value:
        raise ConfigurationError(
            "no Kafka broker: set KAFKA_BOOTSTRAP_SERVERS or start the local stack with `accord dev up`"
        )
    return value


def client_config(
    extra: Mapping[str, Any] | None = None,
    *,
    bootstrap: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A complete client configuration: bootstrap servers, the pass-through settings, then `extra`.

    `extra` holds what the call site needs (`{"enable.idempotence": True}`) and wins over the environment.
    """
    config: dict[str, Any] = {"bootstrap.servers": bootstrap or bootstrap_servers(environ)}
    config.update(client_properties(environ))
    config.update(extra or {})
    return config


__all__ = ["NOT_CLIENT_SETTINGS", "PREFIX", "bootstrap_servers", "client_config", "client_properties"]
