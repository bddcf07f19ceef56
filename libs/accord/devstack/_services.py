"""accord's own services as parts of the local stack: the hub and the three connectors, each its own process.

Before the first of them starts, the stack makes sure the topics of the catalogue exist and the event schemas
are registered (both idempotent). A connector that receives webhooks gets a secret of its own (kept in its
state folder) and, once it answers, a webhook subscription at the sandbox pointing at it; a restart replaces
the subscription it made before (the port changes), and `accord dev down` removes it.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from ._base import PartRecord, StackError
from ._paths import repo_root
from ._service import ServicePart


def ensure_contracts(env: Mapping[str, str]) -> None:
    """Create the catalogue's missing topics and register every event schema (the services need both)."""
    from accord import schema_review
    from accord.events import catalogue as source
    from accord.topics import ensure_topics, load_catalogue

    schemas = repo_root() / "schemas"
    kafka = env.get("KAFKA_BOOTSTRAP_SERVERS")
    registry = env.get("SCHEMA_REGISTRY_URL")
    if not kafka or not registry:
        raise StackError("contracts", "the services need Kafka and the registry started first")
    ensure_topics(kafka, load_catalogue(schemas / "topics.yaml"))
    with schema_review.RegistryClient(registry) as client:
        for event in source.load(schemas).events.values():
            schema_review.register_event(client, event)


def _secret(workdir: Path, name: str = "webhook-secret", prefix: str = "whsec_") -> str:
    """A secret of this stack's, made on first use and kept (mode 600) in the part's state folder."""
    path = workdir / name
    if not path.exists():
        path.write_text(prefix + secrets.token_hex(24))
        path.chmod(0o600)
    return path.read_text().strip()


class AccordServicePart(ServicePart):
    """`python -m accord_<name>` configured through the environment (ACCORD_<PREFIX>_HTTP_PORT, ...)."""

    def __init__(
        self,
        name: str,
        module: str,
        *,
        prefix: str,
        webhook: tuple[str, str] | None = None,
        settings: Mapping[str, str] | None = None,
        prepare: bool = False,
        oauth: bool = False,
        compose_port: int | None = None,
    ) -> None:
        super().__init__(
            name,
            module,
            exports=f"ACCORD_{prefix}_URL",
            health_path="/healthz",
            args=lambda port: [],
            extra_env=self._settings,
            port_env=f"ACCORD_{prefix}_HTTP_PORT",
            compose_port=compose_port,
        )
        self.prefix = prefix
        self.webhook = webhook  # (sandbox system, path on the service)
        self.settings = dict(settings or {})
        self.prepare = prepare
        self.oauth = oauth  # the system's API wants OAuth client credentials (the sandbox takes any pair)

    def choose_port(self, workdir: Path) -> int:
        """The port it had before, if it is free: a restarted service keeps its address, as a deployed one does,
        so the webhooks the sandbox is still delivering (or retrying) to it arrive."""
        saved = workdir / "port"
        if saved.exists():
            port = int(saved.read_text())
            with contextlib.suppress(OSError), socket.socket() as s:
                s.bind(("127.0.0.1", port))
                return port
        port = super().choose_port(workdir)
        saved.write_text(str(port))
        return port

    def _settings(self, workdir: Path) -> dict[str, str]:
        extra = dict(self.settings)
        if self.webhook is not None:
            extra[f"ACCORD_{self.prefix}_WEBHOOK_SECRETS"] = _secret(workdir)
        if self.oauth:
            extra.setdefault(f"ACCORD_{self.prefix}_CLIENT_ID", f"accord-{self.name}")
            extra[f"ACCORD_{self.prefix}_CLIENT_SECRET"] = _secret(workdir, "client-secret", "cs_")
        return extra

    def start(self, home: Path, env: Mapping[str, str]) -> PartRecord:
        if self.prepare:
            ensure_contracts(env)
        record = super().start(home, env)
        record.extra["sandbox"] = env.get("ACCORD_SANDBOX_URL", "")
        return record

    def wait_ready(self, record: PartRecord, timeout: float) -> None:
        super().wait_ready(record, timeout)
        if self.webhook is not None and record.extra.get("sandbox"):
            self._subscribe(record)

    def _subscribe(self, record: PartRecord) -> None:
        system, path = self.webhook or ("", "")
        sandbox = record.extra["sandbox"]
        previous = Path(record.log or "").parent / "subscription.json"
        if previous.exists():
            old = json.loads(previous.read_text())
            if old.get("url") == record.address + path:
                record.extra["subscription"] = old["id"]
                return  # same address: the subscription and its pending deliveries stay
            httpx.delete(f"{sandbox}/admin/webhooks/{old['id']}", timeout=10)
        secret = _secret(Path(record.log or "").parent)
        response = httpx.post(
            f"{sandbox}/admin/webhooks",
            json={"system": system, "url": record.address + path, "secret": secret},
            timeout=10,
        )
        if response.status_code >= 400:
            raise StackError(self.name, f"the sandbox refused the webhook subscription: {response.text[:300]}")
        sub: dict[str, Any] = response.json()
        previous.write_text(json.dumps({"id": sub["id"], "url": record.address + path}))
        record.extra["subscription"] = sub["id"]

    def stop(self, record: PartRecord, timeout: float) -> None:
        running = record.process() is not None
        super().stop(record, timeout)
        subscription = Path(record.log or "").parent / "subscription.json"
        # A dead process is being cleared before a restart on the same port: its subscription stays (with what
        # the sandbox is still delivering to it). A running one is being stopped for good.
        if running and subscription.exists() and record.extra.get("sandbox"):
            old = json.loads(subscription.read_text())
            # the sandbox may be down already: its subscriptions went with it
            with contextlib.suppress(httpx.HTTPError):
                httpx.delete(f"{record.extra['sandbox']}/admin/webhooks/{old['id']}", timeout=5)
            subscription.unlink(missing_ok=True)


#: FROM/TO rates as the sandbox ERP's fixed table has them (USD value: EUR 1.087, GBP 1.266)
DEMO_RATES = {
    "USD/EUR": "0.92",
    "EUR/USD": "1.087",
    "GBP/EUR": "1.1647",
    "EUR/GBP": "0.8586",
    "USD/GBP": "0.7899",
    "GBP/USD": "1.266",
}


def service_parts() -> list[ServicePart]:
    """The hub first (it prepares the contracts), then the connectors, then the reconciler."""
    return [
        AccordServicePart(
            "orchestrator", "accord_orchestrator", prefix="ORCHESTRATOR", prepare=True, compose_port=8091
        ),
        AccordServicePart(
            "crm-connector",
            "accord_crm_connector",
            prefix="CRM",
            webhook=("crm", "/webhooks/crm"),
            oauth=True,
            compose_port=8092,
        ),
        AccordServicePart(
            "billing-connector",
            "accord_billing_connector",
            prefix="BILLING",
            webhook=("billing", "/webhooks/billing"),
            compose_port=8093,
        ),
        AccordServicePart(
            "erp-connector",
            "accord_erp_connector",
            prefix="ERP",
            oauth=True,
            compose_port=8094,
            # the sandbox ERP's own rate table, for documents in another currency than the subsidiary's
            settings={"ACCORD_ERP_RATES": json.dumps(DEMO_RATES)},
        ),
        AccordServicePart(
            "reconciler",
            "accord_reconciler",
            prefix="RECONCILER",
            oauth=True,  # it reads the ERP's and the CRM's APIs in its state runs
            compose_port=8095,
            # a state run (changed since the last one) every 15 minutes; `accord reconcile run` for one now
            settings={
                "ACCORD_RECONCILER_STATE_RUN_SECONDS": "900",
                # the sandbox ERP's subsidiaries: a posting converted to its entity's currency is no currency mismatch
                "ACCORD_RECONCILER_BASE_CURRENCIES": json.dumps({"US": "USD", "EU": "EUR", "UK": "GBP"}),
            },
        ),
    ]
