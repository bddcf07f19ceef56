"""Reading the operator audit trail back in tests."""

from __future__ import annotations

import json
import time
from typing import Any

from accord.ops import AUDIT_TOPIC, read_to_end


def audit_records(bootstrap: str, who: str, expected: int, *, within: float = 30.0) -> list[dict[str, Any]]:
    """The audit records of operator `who`, once `expected` of them are readable (bounded wait).

    The trail is read with read_committed, and redrive writes its record inside a transaction: a reader stops
    at the partition's last stable offset, which moves past a commit shortly after the commit returns.
    """
    deadline = time.monotonic() + within
    while True:
        trail = [json.loads(m.value() or b"") for m in read_to_end({"bootstrap.servers": bootstrap}, AUDIT_TOPIC)]
        mine = [r for r in trail if r["who"] == who]
        if len(mine) >= expected or time.monotonic() > deadline:
            return mine
        time.sleep(0.2)
