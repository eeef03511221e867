"""Strategic weight normalisation (strategic-config.md §3.6, §5.4) and FEATURE_* env parsing (§5)."""

from __future__ import annotations

import math

import pytest

from service.domain.allocator.model import AllocatorConfig
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


def test_config_from_env_defaults_and_production_merges():
    assert AllocatorConfig.from_env({}) == AllocatorConfig()
    production = AllocatorConfig.from_env({}, production=True)
    assert production.merges_enabled is False and production.combination_planner is False
    assert (
        AllocatorConfig.from_env({"FEATURE_ALLOCATOR_ADJACENCY_MODE": "pairwise"}).adjacency_mode
        == "pairwise"
    )
    assert (
        AllocatorConfig.from_env({"FEATURE_ALLOCATOR_ADJACENCY_MODE": "star"}).adjacency_mode == "connected"
    )
    assert AllocatorConfig.from_env({"FEATURE_ALLOCATOR_K_MAX": "9"}).effective_k_max == 5
    assert (
        AllocatorConfig.from_env(
            {"FEATURE_ALLOCATOR_ADJACENCY_MIN_PARTY_SIZE": "50"}
        ).adjacency_min_party_size
        == 20
    )


def test_out_of_range_env_refuses_to_start():
    with pytest.raises(ValueError, match="FEATURE_SELECTOR_LOOKAHEAD_PENALTY_WEIGHT"):
        AllocatorConfig.from_env({"FEATURE_SELECTOR_LOOKAHEAD_PENALTY_WEIGHT": "0"})
