"""The Lua scripts keep the shape their callers rely on: every script names its keys once at the top,
in order, and reads them nowhere else; helpers come from include files that exist and are inlined
before their first use; shared constants are filled in from ``taskq.constants``; and every script, as
sent to Redis, compiles. A script that breaks one of these fails here, before any job runs into it.

Scripts and includes are discovered from the ``lua/`` folder, so a new script is checked without
being listed anywhere.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest
from redis.asyncio import Redis

from taskq import constants
from taskq.scripts import script_source

LUA = resources.files("taskq").joinpath("lua")
FILES = {
    entry.name: entry.read_text(encoding="utf-8") for entry in LUA.iterdir() if entry.name.endswith(".lua")
}
SCRIPTS = sorted(name.removesuffix(".lua") for name in FILES if not name.startswith("_"))
INCLUDES = sorted(name for name in FILES if name.startswith("_"))

NAMED_KEY = re.compile(r"^local (?P<name>[a-z_]+) = KEYS\[(?P<index>\d+)\]$")
#: A script taking a variable number of keys (enqueue: two per item) names them by one accessor each.
KEY_ACCESSOR = re.compile(r"^local function (?P<name>[a-z_]+)\(i\) return KEYS\[[^\]]+\] end$")
INCLUDE = re.compile(r"^--@include (?P<name>\S+)$", re.MULTILINE)
CONST = re.compile(r"^--@const (?P<name>\S+)$", re.MULTILINE)
HELPER = re.compile(r"^local function (?P<name>\w+)\(", re.MULTILINE)

#: Redis refuses a write script at maxmemory unless it says allow-oom; these must keep running there
#: (test_full_redis_keeps_leases_and_acks), and stats must run on a replica.
FLAGS = {
    "heartbeat": "#!lua flags=allow-oom",
    "complete": "#!lua flags=allow-oom",
    "fail": "#!lua flags=allow-oom",
    "release": "#!lua flags=allow-oom",
    "reap": "#!lua flags=allow-oom",
    "stats": "#!lua flags=no-writes",
}


def code_lines(text: str) -> list[str]:
    """The script's lines without comments and the flags line (no string in the scripts holds '--')."""
    lines = (line.split("--", 1)[0].strip() for line in text.splitlines() if not line.startswith("#!"))
    return [line for line in lines if line]


def helpers() -> set[str]:
    return {m["name"] for name in INCLUDES for m in HELPER.finditer(FILES[name])}


def calls_of(helper: str, code: str) -> list[int]:
    """Where ``code`` calls ``helper`` (its definition is no call)."""
    return [
        m.start()
        for m in re.finditer(rf"(?<![\w.:]){helper}\(", code)
        if not code[: m.start()].endswith("local function ")
    ]


def test_the_folder_holds_scripts_and_includes() -> None:
    assert {"enqueue", "claim", "complete", "fail", "reap"} <= set(SCRIPTS)
    assert "_lib.lua" in INCLUDES


@pytest.mark.parametrize("name", SCRIPTS)
def test_each_script_names_its_keys_once_in_order(name: str) -> None:
    lines = code_lines(FILES[f"{name}.lua"])
    reading_keys = [line for line in lines if "KEYS[" in line]
    named = [m for m in map(NAMED_KEY.match, reading_keys) if m]
    accessors = [line for line in reading_keys if KEY_ACCESSOR.match(line)]
    assert len(named) + len(accessors) == len(reading_keys), (
        f"{name}.lua reads KEYS[...] outside its key declarations: "
        f"{[line for line in reading_keys if not NAMED_KEY.match(line) and not KEY_ACCESSOR.match(line)]}"
    )
    assert [int(m["index"]) for m in named] == list(range(1, len(named) + 1))
    names = [m["name"] for m in named]
    assert len(set(names)) == len(names)
    # The declarations open the script: no code runs before its keys have names.
    assert lines[: len(reading_keys)] == reading_keys
    # The header documents exactly the keys the script names.
    header = "\n".join(line for line in FILES[f"{name}.lua"].splitlines() if line.startswith("--"))
    assert sorted({int(i) for i in re.findall(r"KEYS\[(\d+)\]", header)}) == list(range(1, len(named) + 1))


@pytest.mark.parametrize("name", INCLUDES)
def test_helpers_take_their_keys_and_arguments_as_parameters(name: str) -> None:
    """A helper that read KEYS or ARGV would mean another thing in every script that includes it."""
    assert not [line for line in code_lines(FILES[name]) if "KEYS" in line or "ARGV" in line]


@pytest.mark.parametrize("name", SCRIPTS)
def test_includes_exist_and_define_each_helper_before_its_first_call(name: str) -> None:
    included = INCLUDE.findall(FILES[f"{name}.lua"])
    assert set(included) <= set(INCLUDES)
    assert len(set(included)) == len(included)
    if included:
        assert included[0] == "_lib.lua"
    # A local function called before its definition is a global lookup: the script would load and
    # fail only when that line runs. Every helper called must be defined above its first call.
    source = "\n".join(code_lines(script_source(name)))
    for helper in helpers():
        calls = calls_of(helper, source)
        if calls:
            defined = source.find(f"local function {helper}(")
            assert 0 <= defined < calls[0], f"{name}.lua calls {helper} before it is defined"


def test_every_helper_is_used_by_some_script() -> None:
    sources = "\n".join("\n".join(code_lines(script_source(name))) for name in SCRIPTS)
    assert not {helper for helper in helpers() if not calls_of(helper, sources)}


@pytest.mark.parametrize("name", SCRIPTS)
def test_constants_come_from_the_python_module(name: str) -> None:
    source = script_source(name)
    assert not re.search(r"^--@", source, re.MULTILINE), "an include or constant line was left as it was"
    assert "{{" not in source
    for text in [FILES[f"{name}.lua"], *(FILES[i] for i in INCLUDE.findall(FILES[f"{name}.lua"]))]:
        for const in CONST.findall(text):
            value = getattr(constants, const)
            lua = "{" + ", ".join(map(str, value)) + "}" if isinstance(value, tuple) else value  # an array
            assert f"local {const} = {lua}\n" in source


def test_the_band_fits_every_priority_in_exact_doubles() -> None:
    top = (constants.MAX_PRIORITY + 1) * constants.BAND
    assert top <= 2**53
    assert 0 <= constants.DEFAULT_PRIORITY <= constants.MAX_PRIORITY


@pytest.mark.parametrize("name", SCRIPTS)
def test_flags_line_is_kept(name: str) -> None:
    assert FILES[f"{name}.lua"].splitlines()[0] == FLAGS.get(name, "#!lua")


@pytest.mark.parametrize("name", SCRIPTS)
async def test_every_script_compiles_on_the_server(redis: Redis, name: str) -> None:
    source = script_source(name)
    sha = await redis.script_load(source)
    assert (await redis.script_exists(sha)) == [True]
