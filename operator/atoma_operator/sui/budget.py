"""Gas budget from a simulation, as Mysten's SDKs size it, under a ceiling.

The TypeScript SDK (Transaction build, `setGasBudget` unset) simulates and sets
    budget = computation + storage - rebate + 1000 x price,
never below computation + 1000 x price (a large rebate must not shrink the budget under
what execution needs before rebates are known). A margin on top absorbs state that
changes between simulation and execution (a longer vector, a new dynamic field). The
resource's `gasBudget` (or the operator's setting) is the ceiling, never the target:
paying a 0.05 SUI budget for a call that costs a fraction of it ties up gas-coin balance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from atoma_operator.sui.types import GasCost

SAFE_OVERHEAD_UNITS = 1000
"""The SDK's GAS_SAFE_OVERHEAD, in units of the gas price (also Sui's minimum budget)."""
DEFAULT_MARGIN = 0.2


@dataclass(frozen=True)
class BudgetPlan:
    budget: int  # what to sign with: min(needed, ceiling), never below the protocol minimum
    needed: int  # what the simulation says this call needs, with the margin
    ceiling: int

    @property
    def fits(self) -> bool:
        """False: the call needs more than the ceiling allows; sending it would run out
        of gas (and pay for that): refuse instead (Stalled, with the numbers)."""
        return self.needed <= self.ceiling


def plan_budget(
    cost: GasCost, *, price: int, ceiling: int, margin: float = DEFAULT_MARGIN
) -> BudgetPlan:
    """Budget for a transaction whose simulation reported `cost`, at gas `price`."""
    if price <= 0 or ceiling <= 0 or margin < 0:
        raise ValueError(f"price, ceiling must be positive and margin >= 0: {price}, {ceiling}")
    overhead = SAFE_OVERHEAD_UNITS * price
    floor = cost.computation + overhead
    base = max(cost.computation + cost.storage - cost.rebate + overhead, floor)
    needed = math.ceil(base * (1 + margin))
    budget = max(min(needed, ceiling), overhead)
    return BudgetPlan(budget=budget, needed=needed, ceiling=ceiling)
