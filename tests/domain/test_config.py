"""Strategic weight normalisation (docs/strategic-config.md §3.6). FEATURE_* parsing: tests/app/test_settings.py."""

from __future__ import annotations

import math

from service.domain.weights import StaticWeightsProvider, StrategicWeights, StrategicWeightsProvider


def test_weights_are_clamped_and_normalised():
    w = StrategicWeights(
        scarcity=5000, demand_multiplier_override=12, future_conflict_penalty=-3
    ).normalised()
    assert (w.scarcity, w.demand_multiplier_override, w.future_conflict_penalty) == (1000, 10, 0)
    assert StrategicWeights(scarcity=math.nan).normalised().scarcity == 22
    assert StrategicWeights(demand_multiplier_override=0).effective_demand_override == 1.0
    assert StrategicWeights(demand_multiplier_override=None).effective_demand_override is None
    assert StrategicWeights(demand_multiplier_override=2.5).effective_demand_override == 2.5


def test_static_provider_satisfies_the_protocol():
    provider: StrategicWeightsProvider = StaticWeightsProvider(
        StrategicWeights(scarcity=30, source="db", scope="global")
    )
    resolved = provider.resolve("any-restaurant")
    assert resolved.scarcity == 30
    assert resolved.telemetry() == {
        "source": "db",
        "scope": "global",
        "degraded": False,
        "degradedReason": None,
        "version": None,
    }
