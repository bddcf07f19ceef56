"""Bearer sessions the CRM and ERP issue (see auth.py), kept in memory with their expiry in sandbox time."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

LIFETIME = {"crm": timedelta(hours=2), "erp": timedelta(minutes=60)}


@dataclass
class Sessions:
    """Bearer tokens issued per system, with their expiry in sandbox time."""

    tokens: dict[str, dict[str, datetime]] = field(default_factory=lambda: {"crm": {}, "erp": {}})

    def issue(self, system: str, now: datetime) -> str:
        prefix = "00D5g0000000001!" if system == "crm" else "eyJ"
        token = prefix + secrets.token_urlsafe(32)
        self.tokens[system][token] = now + LIFETIME[system]
        return token

    def valid(self, system: str, token: str, now: datetime) -> bool:
        expiry = self.tokens[system].get(token)
        return expiry is not None and now < expiry

    def revoke(self) -> int:
        count = sum(len(t) for t in self.tokens.values())
        for tokens in self.tokens.values():
            tokens.clear()
        return count
