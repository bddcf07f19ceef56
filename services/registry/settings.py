"""One frozen settings object for the registry, read from the environment (prefix ACCORD_REGISTRY_)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CompatibilityLevel = Literal[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
]


class RegistrySettings(BaseSettings):
    """Everything the registry reads at start-up; invalid combinations are refused before anything starts."""

    model_config = SettingsConfigDict(env_prefix="ACCORD_REGISTRY_", frozen=True, extra="ignore")

    #: the standard name, as every Kafka client of accord reads it
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "ACCORD_REGISTRY_KAFKA_BOOTSTRAP_SERVERS"),
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    #: the URL other instances forward writes to; defaults to http://host:port
    advertised_url: str | None = None
    topic: str = "_schemas"
    #: -1 lets the broker choose (its default.replication.factor)
    topic_replication_factor: int = -1
    election_topic: str = "_schemas_election"
    election_group: str = "accord-registry"
    #: false: this instance never becomes the leader (it only serves reads and forwards writes)
    leader_eligible: bool = True
    default_compatibility: CompatibilityLevel = "BACKWARD"
    #: how long a write waits for a leader to be elected / for its record to come back from Kafka
    write_timeout_seconds: float = Field(default=20.0, gt=0)
    startup_timeout_seconds: float = Field(default=60.0, gt=0)
    basic_auth_username: str | None = None
    basic_auth_password: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("topic", "election_topic", "election_group")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _auth_pair(self) -> RegistrySettings:
        if (self.basic_auth_username is None) != (self.basic_auth_password is None):
            raise ValueError(
                "set both ACCORD_REGISTRY_BASIC_AUTH_USERNAME and ACCORD_REGISTRY_BASIC_AUTH_PASSWORD, or neither"
            )
        if self.topic == self.election_topic:
            raise ValueError("ACCORD_REGISTRY_TOPIC and ACCORD_REGISTRY_ELECTION_TOPIC must differ")
        return self

    @property
    def url(self) -> str:
        return self.advertised_url or f"http://{self.host}:{self.port}"
