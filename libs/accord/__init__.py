"""accord: event-driven quote-to-cash integration between CRM, billing and ERP over Apache Kafka.

The platform library. Services import what they need from here; they never import each other.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
