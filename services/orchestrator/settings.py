"""The orchestrator's settings: the runtime's standard names, and ACCORD_ORCHESTRATOR_… for the hub's rules."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from accord.runtime import RuntimeSettings

from .hub import HubConfig


class OrchestratorSettings(RuntimeSettings):
    model_config = SettingsConfigDict(env_prefix="ACCORD_ORCHESTRATOR_", frozen=True, extra="ignore")

    credit_review_threshold: Decimal = Field(default=Decimal("250000"), gt=0)
    retry_delays_seconds: list[float] = Field(default=[2, 5, 10, 20, 30, 60, 60, 120, 300, 600], min_length=1)
    prerequisite_patience_seconds: float = Field(default=86400, ge=0)
    answer_sla_seconds: float = Field(default=600, gt=0)
    first_invoice_sla_seconds: float = Field(default=3600, gt=0)
    posting_sla_seconds: float = Field(default=3600, gt=0)

    def hub(self) -> HubConfig:
        return HubConfig(
            credit_review_threshold=self.credit_review_threshold,
            retry_delays=[timedelta(seconds=s) for s in self.retry_delays_seconds],
            prerequisite_patience=timedelta(seconds=self.prerequisite_patience_seconds),
            answer_sla=timedelta(seconds=self.answer_sla_seconds),
            first_invoice_sla=timedelta(seconds=self.first_invoice_sla_seconds),
            posting_sla=timedelta(seconds=self.posting_sla_seconds),
        )
