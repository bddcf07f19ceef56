"""The generator's plan is a pure function of the seed."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from accord_sandbox.generator import plan

pytestmark = pytest.mark.unit


def test_same_seed_same_plan() -> None:
    assert [asdict(c) for c in plan(40, seed=11)] == [asdict(c) for c in plan(40, seed=11)]


def test_other_seed_other_plan() -> None:
    assert [asdict(c) for c in plan(40, seed=11)] != [asdict(c) for c in plan(40, seed=12)]


def test_plan_is_a_realistic_book() -> None:
    book = plan(60, seed=3)
    assert {c.entity for c in book} == {"US", "EU", "UK"}
    assert len({c.currency for c in book}) >= 3
    assert {ln.frequency for c in book for ln in c.lines} == {"Annual", "Monthly", "Usage"}
    assert any(c.parent for c in book), "some accounts sit under a parent"
    assert any(c.amendment for c in book) and any(c.renew for c in book)
    assert any(c.card != "pm_card_visa" for c in book), "some cards decline"
    keys = [c.key for c in book]
    assert all(c.parent in keys[: keys.index(c.key)] for c in book if c.parent), "a parent exists before its child"


def test_small_books_still_span_the_legal_entities() -> None:
    assert {c.entity for c in plan(3, seed=1)} == {"US", "EU", "UK"}
