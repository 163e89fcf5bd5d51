"""plan_budget: the SDK's formula, a margin, the ceiling, and the protocol minimum."""

from __future__ import annotations

import pytest

from atoma_operator.sui.budget import plan_budget
from atoma_operator.sui.types import GasCost


def test_sdk_formula_with_margin() -> None:
    cost = GasCost(computation=1_000_000, storage=4_000_000, rebate=3_000_000)
    plan = plan_budget(cost, price=1000, ceiling=50_000_000, margin=0.0)
    assert plan.needed == 1_000_000 + 4_000_000 - 3_000_000 + 1_000_000
    assert plan_budget(cost, price=1000, ceiling=50_000_000).needed == 3_600_000
    assert plan.fits and plan.budget == plan.needed


def test_a_large_rebate_never_shrinks_below_computation_plus_overhead() -> None:
    cost = GasCost(computation=1_000_000, storage=0, rebate=5_000_000)
    assert plan_budget(cost, price=750, ceiling=10**9, margin=0).needed == 1_750_000


def test_the_ceiling_caps_and_says_it_does_not_fit() -> None:
    cost = GasCost(computation=2_000_000, storage=3_000_000, rebate=0)
    plan = plan_budget(cost, price=1000, ceiling=4_000_000, margin=0)
    assert plan.budget == 4_000_000 and plan.needed == 6_000_000 and not plan.fits


def test_never_below_the_protocol_minimum() -> None:
    plan = plan_budget(GasCost(0, 0, 0), price=1000, ceiling=500, margin=0)
    assert plan.budget == 1_000_000  # 1000 x price, whatever the ceiling says


@pytest.mark.parametrize(("price", "ceiling", "margin"), [(0, 1, 0), (1, 0, 0), (1, 1, -0.1)])
def test_bad_input_is_refused(price: int, ceiling: int, margin: float) -> None:
    with pytest.raises(ValueError):
        plan_budget(GasCost(1, 1, 1), price=price, ceiling=ceiling, margin=margin)
