"""How good is the plan (docs/assign-tables.md §7.14): an upper bound on the bookings any plan could seat
under the same rules, and an exact plan when a solve fits the budget.

The packing problem is the clique formulation: one column per (booking, candidate table set), at most one
column per booking, and per table at most one booking at every instant — windows are intervals, so the
maximal cliques sit at window starts. Its LP relaxation (HiGHS) bounds the integer optimum from above; on
small days the MILP is solved outright, warm-started from the planner's plan. Iteration and node limits,
not the clock, stop the solver (one thread, fixed seed), so the same input gives the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

# Deterministic budgets (docs/assign-tables.md §7.14): the LP runs when the day has at most this many
# columns, the exact MILP at most EXACT_COLUMN_LIMIT columns and EXACT_NODE_LIMIT branch-and-bound nodes.
LP_COLUMN_LIMIT = 12_000
# The planner does not even build the columns of a day with more candidates than this (before dropping
# supersets): the bound is then the bookings with any candidate (METHOD_CANDIDATES).
BOUND_COLUMN_LIMIT = 40_000
LP_ITERATION_LIMIT = 200_000
EXACT_COLUMN_LIMIT = 2_500
EXACT_NODE_LIMIT = 500
# Safety net only (reported as budgetExhausted when it binds; the limits above normally stop first).
SOLVER_TIME_LIMIT_S = 2.0

METHOD_EXACT = "exact"  # MILP proven optimal: the bound is the optimum
METHOD_LP = "lp"  # LP relaxation of the clique formulation
METHOD_CANDIDATES = "candidates"  # bookings with any candidate at all (when no solve fits the budget)


@dataclass(frozen=True, slots=True)
class Column:
    booking: int  # index into the bookings
    mask: int  # table-index bitmask
    relaxed: bool = False  # needs a relaxation (docs/assign-tables.md §7.13): used only when nothing strict seats more
    slack: int = 0


@dataclass(frozen=True, slots=True)
class PackingDay:
    starts: Sequence[float]
    ends: Sequence[float]
    columns: Sequence[Column]


@dataclass(frozen=True, slots=True)
class Bound:
    upper_bound: int
    optimal: bool
    method: str
    # exact solve only: the chosen column per booking (None = unseated), when it seats more than the plan
    exact_choice: tuple[int | None, ...] | None = None
    solver: dict[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        return {"upperBound": self.upper_bound, "optimal": self.optimal, "method": self.method}


def _rows(day: PackingDay) -> list[list[int]]:
    """Per column, the rows it is in: its booking's row, then one row per (table, window start) clique."""
    n = len(day.starts)
    entries: list[list[int]] = [[c.booking] for c in day.columns]
    by_table: dict[int, list[int]] = {}
    for k, col in enumerate(day.columns):
        m = col.mask
        while m:
            low = m & -m
            by_table.setdefault(low.bit_length() - 1, []).append(k)
            m ^= low
    row = n
    seen: set[tuple[int, ...]] = set()
    for table in sorted(by_table):
        cols = by_table[table]
        points = sorted({day.starts[day.columns[k].booking] for k in cols})
        for point in points:
            active = tuple(
                k for k in cols if day.starts[day.columns[k].booking] <= point < day.ends[day.columns[k].booking]
            )
            if len({day.columns[k].booking for k in active}) < 2 or active in seen:
                continue
            seen.add(active)
            for k in active:
                entries[k].append(row)
            row += 1
    return entries


def _highspy() -> ModuleType:
    """highspy, imported on first use (only days that reach a solver pay for it). Its one-per-process
    banner on stdout is the process's concern, not the domain's: the server silences it at start
    (service/solver_output.py)."""
    import highspy

    return highspy


def _solver(day: PackingDay, entries: list[list[int]], costs: list[float], integer: bool):  # type: ignore[no-untyped-def]
    import numpy as np

    highspy = _highspy()
    row_count = 1 + max((r for col in entries for r in col), default=0)
    starts = [0]
    index: list[int] = []
    for col_rows in entries:
        index.extend(col_rows)
        starts.append(len(index))
    lp = highspy.HighsLp()
    lp.num_col_ = len(entries)
    lp.num_row_ = row_count
    lp.col_cost_ = np.array(costs)
    lp.col_lower_ = np.zeros(len(entries))
    lp.col_upper_ = np.ones(len(entries))
    lp.row_lower_ = np.full(row_count, -highspy.kHighsInf)
    lp.row_upper_ = np.ones(row_count)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(len(index))
    lp.sense_ = highspy.ObjSense.kMaximize
    if integer:
        lp.integrality_ = [highspy.HighsVarType.kInteger] * len(entries)
    solver = highspy.Highs()
    for option, value in (
        ("output_flag", False), ("threads", 1), ("random_seed", 0), ("time_limit", SOLVER_TIME_LIMIT_S),
        ("simplex_iteration_limit", LP_ITERATION_LIMIT), ("mip_max_nodes", EXACT_NODE_LIMIT),
        ("mip_rel_gap", 0.0), ("mip_abs_gap", 0.0), ("presolve", "on"),
    ):
        solver.setOptionValue(option, value)
    solver.passModel(lp)
    return solver, highspy


def plan_bound(day: PackingDay, plan: Sequence[int | None]) -> Bound:
    """The bound for `plan` (chosen column per booking, None = unseated) on `day`."""
    seated = sum(1 for k in plan if k is not None)
    n = len(day.starts)
    with_candidates = len({c.booking for c in day.columns})
    if not day.columns:
        return Bound(0, seated == 0, METHOD_CANDIDATES)
    columns = len(day.columns)
    if columns > LP_COLUMN_LIMIT:
        return Bound(with_candidates, seated >= with_candidates, METHOD_CANDIDATES, solver={"columns": columns})
    entries = _rows(day)
    if columns <= EXACT_COLUMN_LIMIT:
        exact = _exact(day, entries, plan, seated)
        if exact is not None:
            return exact
    solver, highspy = _solver(day, entries, [1.0] * columns, integer=False)
    solver.run()
    status = solver.getModelStatus()
    info = {"columns": columns, "status": solver.modelStatusToString(status),
            "iterations": solver.getInfo().simplex_iteration_count}
    if status != highspy.HighsModelStatus.kOptimal:
        return Bound(with_candidates, seated >= with_candidates, METHOD_CANDIDATES, solver=info)
    upper = min(with_candidates, n, math.floor(solver.getInfo().objective_function_value + 1e-6))
    return Bound(upper, seated >= upper, METHOD_LP, solver=info)


def _exact(day: PackingDay, entries: list[list[int]], plan: Sequence[int | None], seated: int) -> Bound | None:
    """Solve the MILP within the node limit: seat most bookings, then use fewest relaxed seats (a weight
    below one booking in total). None when it does not prove optimality in budget. Table choice beyond
    that is left to the solver: a finer tie-break (slack) made proofs several times slower."""
    n = len(day.starts)
    relax_weight = 1.0 / (n + 2)
    costs = [1.0 - (relax_weight if c.relaxed else 0.0) for c in day.columns]
    solver, highspy = _solver(day, entries, costs, integer=True)
    seed = [0.0] * len(day.columns)
    for k in plan:
        if k is not None:
            seed[k] = 1.0
    start = highspy.HighsSolution()
    start.col_value = seed
    start.value_valid = True
    solver.setSolution(start)
    solver.run()
    status = solver.getModelStatus()
    info = {"columns": len(day.columns), "status": solver.modelStatusToString(status),
            "nodes": solver.getInfo().mip_node_count}
    if status != highspy.HighsModelStatus.kOptimal:
        return None
    values = solver.getSolution().col_value
    choice: list[int | None] = [None] * n
    for k, v in enumerate(values):
        if v > 0.5:
            choice[day.columns[k].booking] = k
    optimum = sum(1 for k in choice if k is not None)
    better = optimum > seated
    # Either the plan already reaches the optimum, or the exact plan replaces it: optimal both ways.
    return Bound(optimum, True, METHOD_EXACT, tuple(choice) if better else None, info)
