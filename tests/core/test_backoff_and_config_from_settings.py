"""Retry backoff is equal jitter, as the docs say; the queue config is the settings', not a copy."""

from __future__ import annotations

import dataclasses
import random
import statistics

import pytest
from pydantic import ValidationError

from taskq import CoreSettings, QueueConfig


def test_backoff_draws_spread_over_the_upper_half_of_each_ceiling() -> None:
    """Equal jitter: every draw in [ceiling/2, ceiling], spread over all of it (not piled at one
    end), the mean at 3/4 of the ceiling. Full jitter would put half the draws under ceiling/2."""
    config = QueueConfig.of(retry_backoff_base_seconds=0.1, retry_backoff_max_seconds=1)
    rng = random.Random(12)
    for attempts, ceiling in [(1, 100), (3, 400), (4, 800), (5, 1_000), (30, 1_000)]:
        draws = [config.backoff_ms(attempts, rng) for _ in range(20_000)]
        assert min(draws) >= ceiling // 2
        assert max(draws) <= ceiling
        assert statistics.fmean(draws) == pytest.approx(0.75 * ceiling, rel=0.02)
        quarters = [0] * 4  # of [ceiling/2, ceiling]
        for d in draws:
            quarters[min(3, (d - ceiling // 2) * 4 // (ceiling - ceiling // 2 + 1))] += 1
        assert all(q > 0.2 * len(draws) for q in quarters), quarters


def test_no_backoff_base_means_an_immediate_retry() -> None:
    assert QueueConfig.of(retry_backoff_base_seconds=0).backoff_ms(3) == 0


def test_the_config_is_derived_from_settings_only() -> None:
    """No default of its own (a second source of truth), and the settings' checks apply."""
    fields = dataclasses.fields(QueueConfig)
    assert all(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING for f in fields)
    settings = CoreSettings()
    config = QueueConfig.from_settings(settings)
    assert config.lease_ms == settings.lease_seconds * 1000
    assert config.default_max_attempts == settings.default_max_attempts
    assert config.backoff_max_ms == settings.retry_backoff_max_seconds * 1000
    with pytest.raises(ValidationError, match="heartbeat_seconds must be shorter"):
        QueueConfig.of(lease_seconds=0.5)  # heartbeat 1 s: refused, as a deployment would be
