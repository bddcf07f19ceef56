"""The local stack of real infrastructure that `accord dev up`, the tests and CI start by themselves."""

from ._base import Health, Part, PartRecord, StackError
from ._kafka import kafka_jars
from ._paths import cache_dir, default_home, repo_root
from ._service import ServicePart
from ._stack import DEFAULT_PARTS, INFRA_PARTS, PartStatus, Stack, catalogue

__all__ = [
    "DEFAULT_PARTS",
    "INFRA_PARTS",
    "Health",
    "Part",
    "PartRecord",
    "PartStatus",
    "ServicePart",
    "Stack",
    "StackError",
    "cache_dir",
    "catalogue",
    "default_home",
    "kafka_jars",
    "repo_root",
]
