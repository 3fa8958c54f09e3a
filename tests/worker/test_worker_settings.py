"""WorkerSettings: the environment names other engineers rely on, and refusals at start."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from worker.queues import WeightedPicker
from worker.settings import WorkerSettings, parse_queues


def test_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "WORKER_CONCURRENCY": "7", "WORKER_QUEUES": "high:3,default:1", "WORKER_SHUTDOWN_GRACE": "12",
        "WORKER_PREFETCH": "4", "SMTP_HOST": "mail", "SMTP_PORT": "587", "SMTP_USER": "u",
        "SMTP_PASSWORD": "p", "SMTP_STARTTLS": "true", "SMTP_FROM": "a@b.c", "SMTP_TIMEOUT": "3",
        "REPORTS_DIR": "/reports", "WEBHOOK_ALLOWLIST": "127.0.0.1/32,hooks.test", "LOG_LEVEL": "info",
        "CRON_JOBS": json.dumps([{"name": "n", "schedule": "0 3 * * *", "task": "generate_report"}]),
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = WorkerSettings(_env_file=None)  # type: ignore[call-arg]
    assert (s.worker_concurrency, s.worker_prefetch, s.worker_shutdown_grace) == (7, 4, 12)
    assert s.queue_names() == ("high", "default")
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls, s.smtp_from) == ("mail", 587, True, "a@b.c")
    assert str(s.reports_dir) == "/reports"
    assert s.log_level == "INFO"
    assert s.cron()[0].task == "generate_report"
    assert s.allowlist().allows_address("127.0.0.1")
    assert s.allowlist().allows_host("hooks.test")
    assert not s.allowlist().allows_address("10.0.0.1")


@pytest.mark.parametrize(
    "overrides",
    [
        {"worker_queues": "bad{name}"},
        {"worker_queues": "a:0"},
        {"worker_queues": "a,a"},
        {"cron_jobs": '[{"name": "x", "schedule": "not cron", "task": "debug.noop"}]'},
        {"smtp_tls": True, "smtp_starttls": True},
        {"environment": "production", "smtp_password": "change-me"},
        {"log_level": "loud"},
    ],
)
def test_bad_settings_fail_at_start(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WorkerSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


def test_weighted_order_is_smooth() -> None:
    picker = WeightedPicker(parse_queues("high:3,default:1"))
    order = [picker.names[picker.pick()] for _ in range(8)]
    # 3:1, interleaved rather than in bursts, and the cycle repeats.
    assert order == ["high", "high", "default", "high"] * 2
