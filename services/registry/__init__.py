"""accord's schema registry: the Confluent Schema Registry REST API v1 over a compacted Kafka topic.

State lives in the `_schemas` topic in Confluent's and Karapace's own record format (so either can read it);
every instance rebuilds it in memory at start-up and serves reads from there. One elected instance writes.
"""

from .errors import RegistryError
from .settings import RegistrySettings

__all__ = ["RegistryError", "RegistrySettings"]
