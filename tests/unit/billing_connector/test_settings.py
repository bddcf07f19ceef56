"""The billing connector's settings from the environment: what it takes, and what it refuses with a diagnosis."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from accord_billing_connector.app import BillingConnectorSettings

pytestmark = pytest.mark.unit

BASE = {
    "DATABASE_URL": "postgresql://db/accord",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "ACCORD_SANDBOX_URL": "http://127.0.0.1:8000",
    "ACCORD_BILLING_WEBHOOK_SECRETS": "whsec_old, whsec_new",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SCHEMA_REGISTRY_URL", "ACCORD_BILLING_API_URL", "ACCORD_BILLING_TOPICS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_the_environment_becomes_the_settings(env: pytest.MonkeyPatch) -> None:
    env.setenv("ACCORD_BILLING_TOPICS", '{"q2c.provisioning": "t-requests", "billing.invoices": "t-invoices"}')
    env.setenv("ACCORD_BILLING_COMMAND_CONCURRENCY", "8")
    settings = BillingConnectorSettings()  # type: ignore[call-arg]
    assert settings.secrets == ["whsec_old", "whsec_new"]
    assert (
        settings.topic("q2c.provisioning") == "t-requests" and settings.topic("billing.payments") == "billing.payments"
    )
    assert settings.command_concurrency == 8 and settings.consumer_group == "billing_connector"
    assert "whsec" not in repr(settings) and "postgresql" not in repr(settings)


REFUSED = {
    "no webhook secret": ("ACCORD_BILLING_WEBHOOK_SECRETS", " , ", "at least one secret"),
    "a topic the catalogue lacks": ("ACCORD_BILLING_TOPICS", '{"q2c.provisionning": "t"}', "q2c.provisionning"),
    "no concurrency": ("ACCORD_BILLING_COMMAND_CONCURRENCY", "0", "command_concurrency"),
    "a rate of zero": ("ACCORD_BILLING_RATE_LIMIT_PER_SECOND", "0", "rate_limit_per_second"),
}


@pytest.mark.parametrize("name, value, said", REFUSED.values(), ids=REFUSED.keys())
def test_bad_settings_are_refused_naming_what_to_fix(env: pytest.MonkeyPatch, name: str, value: str, said: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        BillingConnectorSettings()  # type: ignore[call-arg]
    assert said in str(refused.value)
