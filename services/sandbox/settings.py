"""The sandbox's configuration, from the environment."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """DATABASE_URL as everywhere in accord; the rest under ACCORD_SANDBOX_."""

    model_config = SettingsConfigDict(env_prefix="ACCORD_SANDBOX_", frozen=True, extra="ignore")

    database_url: str = Field(validation_alias="DATABASE_URL")
    schema_name: str = Field(default="sandbox", pattern=r"^[a-z_][a-z0-9_]*$")
    #: seeds every random knob (fault rates, webhook chaos) unless a knob brings its own seed
    seed: int = 0
    #: the ERP's governance limit: concurrent requests shared by all callers
    erp_concurrency_limit: int = Field(default=5, ge=1)
    #: ask for credentials as the real systems do (an API key, OAuth tokens); off only for quick experiments
    require_auth: bool = True
    #: how often the webhook dispatcher looks for due deliveries, in seconds
    dispatch_interval: float = Field(default=0.1, gt=0)
