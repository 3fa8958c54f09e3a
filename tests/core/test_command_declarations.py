"""Each command declares its script's keys once, and the declaration matches the script.

A command names its KEYS in order (``QueueCommand.KEYS``); its script names them too, at its top
(``local pending = KEYS[1]``, or ``local pending, scheduled = KEYS[1], KEYS[2]``). A key added,
dropped or moved on one side only fails here, before any call sends the wrong key.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from taskq.commands import ALL, QueueCommand, QueueCommands
from taskq.config import QueueConfig
from taskq.keys import GlobalKeys
from taskq.scripts import script_names

_LOCAL_KEYS = re.compile(
    r"^local\s+(?P<names>[\w\s,]+?)\s*=\s*(?P<values>KEYS\[\d+\](?:\s*,\s*KEYS\[\d+\])*)", re.M
)


def script_keys(name: str) -> dict[int, str]:
    """KEYS index -> the name the script gives it in its ``local <name> = KEYS[i]`` lines."""
    found: dict[int, str] = {}
    source = resources.files("taskq").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    for match in _LOCAL_KEYS.finditer(source):
        names = [n.strip() for n in match["names"].split(",")]
        indexes = [int(i) for i in re.findall(r"KEYS\[(\d+)\]", match["values"])]
        found.update(zip(indexes, names, strict=False))
    return found


def _normal(name: str) -> str:
    """``claimRecordKey``, ``claim_record_key`` and ``claim_record`` are one name."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return snake.removesuffix("_key")


@pytest.mark.parametrize("command", ALL, ids=lambda c: c.SCRIPT)
def test_the_declared_keys_are_the_scripts_keys(command: type[QueueCommand]) -> None:
    declared = {i: _normal(name) for i, name in enumerate(command.KEYS, start=1)}
    assert {i: _normal(n) for i, n in script_keys(command.SCRIPT).items()} == declared


def test_the_key_parser_reads_both_forms() -> None:
    """The check above has teeth: it reads the forms the scripts use (enqueue.lua's already)."""
    assert script_keys("enqueue") == {
        1: "pending",
        2: "scheduled",
        3: "marker",
        4: "stats",
        5: "event_stream",
    }
    assert _normal("claimRecordKey") == _normal("claim_record") == "claim_record"


def test_every_script_has_exactly_one_command() -> None:
    assert sorted(c.SCRIPT for c in ALL) == list(script_names())
    assert "_lib" not in script_names()  # includes are not scripts


def test_a_bound_command_resolves_the_queues_keys_and_leaves_the_varying_ones() -> None:
    config = QueueConfig.of(taskq_prefix="decl", queues="*")
    qk = GlobalKeys("decl").queue("q")
    commands = QueueCommands.bind(qk, config)
    assert commands.claim.keys(qk.claim("7")) == [
        qk.pending, qk.scheduled, qk.active, qk.marker, qk.token, qk.claim("7"), qk.paused,
        qk.event_stream,
    ]  # fmt: skip
    assert commands.dead_retry.keys(qk.job("j")) == [
        qk.dead, qk.pending, qk.marker, qk.job("j"), qk.stats, qk.event_stream,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="shorter"):
        commands.cancel.keys()  # its job hash varies per call: a call without it is refused
