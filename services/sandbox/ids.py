"""Identifiers in each system's style, from counters in the database (so a run's ids are reproducible)."""

from __future__ import annotations

import hashlib
import string

from .store import Tx

_ALPHABET = string.digits + string.ascii_letters


def _base62(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out)).rjust(width, "0")


async def stripe_id(tx: Tx, prefix: str) -> str:
    """`cus_…`, `in_…`: a counter, scrambled with a hash so ids do not look sequential."""
    n = await tx.next_number(f"billing:{prefix}")
    salt = int.from_bytes(hashlib.sha256(f"{prefix}{n}".encode()).digest()[:6], "big")
    return f"{prefix}_{_base62(salt, 9)}{_base62(n, 7)}"


# Salesforce key prefixes of the objects the CRM simulates.
SF_PREFIX = {
    "Account": "001",
    "Contract": "800",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "Contract_Line__c": "a01",
    "Amendment__c": "a02",
}


async def sf_id(tx: Tx, sobject: str) -> str:
    """An 18-character Salesforce-style id: key prefix, pod, counter, case-safe suffix."""
    n = await tx.next_number(f"crm:{sobject}")
    body = SF_PREFIX[sobject] + "5g0" + _base62(n, 9)
    suffix = ""
    for chunk in (body[0:5], body[5:10], body[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return body + suffix
