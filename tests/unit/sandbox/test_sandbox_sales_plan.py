"""The sales mode's plan: waves of the seed's one plan, and the payment outcome of each order form's card."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from accord_sandbox.generator import CARDS, card_outcome, plan, wave

pytestmark = pytest.mark.unit


def test_waves_are_slices_of_one_plan() -> None:
    whole = [asdict(c) for c in plan(30, seed=7)]
    waves = [asdict(c) for c in wave(10, 7, 0) + wave(12, 7, 10) + wave(8, 7, 22)]
    assert waves == whole
    assert [c.key for c in wave(3, 7, 22)] == ["c00022", "c00023", "c00024"]


def test_a_later_wave_does_not_change_an_earlier_one() -> None:
    assert [asdict(c) for c in wave(5, 3, 0)] == [asdict(c) for c in plan(500, 3)[:5]]


@pytest.mark.parametrize(
    ("card", "outcome"),
    [
        ("pm_card_visa", "ok"),
        ("pm_card_chargeDeclinedInsufficientFunds", "soft"),
        ("pm_card_chargeDeclined", "soft"),
        ("pm_card_chargeDeclinedLostCard", "hard"),
        ("pm_card_chargeDeclinedStolenCard", "hard"),
        ("pm_card_somethingUnknown", "soft"),  # billing treats an unknown method as a generic (soft) decline
    ],
)
def test_card_outcome(card: str, outcome: str) -> None:
    assert card_outcome(card) == outcome


def test_every_card_of_the_plan_has_a_known_outcome_and_all_three_occur() -> None:
    book = plan(300, seed=21)
    assert {c.card for c in book} <= {card for card, _ in CARDS}
    assert {card_outcome(c.card) for c in book} == {"ok", "soft", "hard"}


def test_planned_crm_actions_fall_inside_their_contract() -> None:
    """The CRM refuses an amendment or cancellation dated outside the contract: the plan never asks for one.

    Dates are days before "today": the contract starts `start_days_ago` days ago and lasts ≥ 12 months; an
    amendment is effective `days_after_start` days after the start and no later than today; a cancellation is today.
    """
    book = plan(400, seed=5)
    amended = [c for c in book if c.amendment]
    assert amended and any(c.cancel for c in book) and any(c.renew for c in book)
    for c in amended:
        assert c.amendment is not None
        assert 1 <= c.amendment["days_after_start"] <= c.start_days_ago
        assert any(ln.code == c.amendment["code"] for ln in c.lines)
    for c in book:
        assert c.term_months >= 12 and 0 <= c.start_days_ago <= 120
        assert not (c.renew and c.cancel)


def test_a_wave_names_parents_that_exist_before_it_or_inside_it() -> None:
    keys = [c.key for c in plan(60, seed=9)]
    for c in wave(30, 9, 30):
        if c.parent:
            assert keys.index(c.parent) < keys.index(c.key)
