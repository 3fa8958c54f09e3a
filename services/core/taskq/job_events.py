"""Reading the job events the scripts write (``lua/_events.lua``): one capped Stream per queue.

An entry holds one event, or a batch: a run of events of one type made by one script call (a
claim's 'running', an ack batch's 'succeeded'), its jobs packed in one field. An event's id is its
entry's id ('<ms>-<seq>', Redis's clock: its order and timestamp), or '<ms>-<seq>:<index>' for the
event at that index of a batch entry. Ids only compare within one queue's stream, so a reader of
several queues keeps a cursor per queue (``Cursor``). The stream is trimmed (MAXLEN ~
``events_max_len`` entries): ``window`` tells whether a reader's last id may have fallen out of it,
so a resume never skips events silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from taskq.keys import QueueKeys, validate_queue_name

#: Statuses after which a job changes no more (a dead-lettered job can be re-driven: a new run, but
#: its follower has seen its end). 'purged': the job was deleted.
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "purged"})
_ENTRY_ID = re.compile(r"^(\d{1,19})-(\d{1,19})$")
_EVENT_ID = re.compile(r"^(\d{1,19})-(\d{1,19})(?::(\d{1,9}))?$")
#: Extras stored as text in the stream and given back as numbers.
_NUMERIC = {"percent": float, "due": int}


def _s(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def parse_entry_id(text: str) -> tuple[int, int]:
    """'<ms>-<seq>' as a comparable pair; raises ``ValueError`` for anything else."""
    match = _ENTRY_ID.match(text)
    if match is None:
        raise ValueError(f"not a stream entry id ('<ms>-<seq>'): {text[:60]!r}")
    return int(match[1]), int(match[2])


def parse_event_id(text: str) -> tuple[int, int, int | None]:
    """An event id, '<ms>-<seq>' or '<ms>-<seq>:<index>', as (ms, seq, index or None); raises
    ``ValueError`` for anything else."""
    match = _EVENT_ID.match(text)
    if match is None:
        raise ValueError(f"not an event id ('<ms>-<seq>' or '<ms>-<seq>:<index>'): {text[:60]!r}")
    return int(match[1]), int(match[2]), None if match[3] is None else int(match[3])


def entry_of(event_id: str) -> tuple[int, int]:
    """The stream entry an event id points into, as a comparable pair (``ValueError`` if malformed)."""
    ms, seq, _ = parse_event_id(event_id)
    return ms, seq


@dataclass(frozen=True, slots=True)
class JobEvent:
    id: str
    queue: str
    job_id: str
    type: str
    status: str
    attempt: int
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def at_ms(self) -> int:
        return parse_event_id(self.id)[0]

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def document(self) -> dict[str, Any]:
        """The event as the API shows it (JSON-ready)."""
        return {
            "id": self.id,
            "queue": self.queue,
            "job_id": self.job_id,
            "type": self.type,
            "status": self.status,
            "attempt": self.attempt,
            "at": datetime.fromtimestamp(self.at_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z"),
            **self.extras,
        }


def events_of(queue: str, entry_id: Any, raw: Sequence[Any] | Mapping[Any, Any]) -> list[JobEvent]:
    """One stream entry (fields as a flat list or a mapping, bytes or text) as its ``JobEvent``s: one,
    or a batch entry's, in order, each with the id '<entry id>:<index>'."""
    items = raw.items() if isinstance(raw, Mapping) else zip(raw[::2], raw[1::2], strict=True)
    fields = {_s(k): _s(v) for k, v in items}
    packed = fields.get("jobs")
    if packed is None:
        return [_single(queue, _s(entry_id), fields)]
    entry, kind, status = _s(entry_id), fields.get("type", ""), fields.get("status", "")
    parts = packed.split(" ")
    return [
        JobEvent(f"{entry}:{i}", queue, job, kind, status, int(attempt or 0))
        for i, (job, attempt) in enumerate(zip(parts[::2], parts[1::2], strict=True))
    ]


def _single(queue: str, entry_id: str, fields: dict[str, str]) -> JobEvent:
    extras: dict[str, Any] = {}
    for name, value in fields.items():
        if name in ("job", "type", "status", "attempt"):
            continue
        convert = _NUMERIC.get(name)
        try:
            extras[name] = convert(value) if convert else value
        except ValueError:
            extras[name] = value
    return JobEvent(
        id=entry_id,
        queue=queue,
        job_id=fields.get("job", ""),
        type=fields.get("type", ""),
        status=fields.get("status", ""),
        attempt=int(fields.get("attempt") or 0),
        extras=extras,
    )


@dataclass(frozen=True, slots=True)
class Window:
    """What a queue's stream holds now: its first entry, the last id it ever gave, and whether it was
    ever trimmed (entries added > entries held)."""

    first: tuple[int, int] | None
    last: tuple[int, int]
    trimmed: bool

    def lost_after(self, seen: tuple[int, int]) -> bool:
        """Whether events after ``seen`` may be gone: it is older than the window's first entry and
        the stream was trimmed, or it is newer than any id this stream gave (another Redis's, or the
        stream was deleted): either way the reader must start over."""
        if seen > self.last:
            return True
        return self.trimmed and (self.first is None or seen < self.first)


async def window(redis: Any, qk: QueueKeys) -> Window:
    """The queue's stream window (one XINFO STREAM; a stream never written is empty)."""
    try:
        info = await redis.execute_command("XINFO", "STREAM", qk.event_stream)
    except Exception as exc:  # a missing key is an error reply, not an empty answer
        if "no such key" in str(exc).lower():
            return Window(None, (0, 0), False)
        raise
    if isinstance(info, list):
        info = dict(zip(info[::2], info[1::2], strict=True))
    info = {_s(k): v for k, v in info.items()}
    first_entry = info.get("first-entry")
    first = parse_entry_id(_s(first_entry[0])) if first_entry else None
    trimmed = int(info.get("entries-added", 0)) > int(info.get("length", 0))
    return Window(first, parse_entry_id(_s(info["last-generated-id"])), trimmed)


async def _rest_of(redis: Any, qk: QueueKeys, after: str) -> tuple[str, list[JobEvent]]:
    """``after``'s entry (as '<ms>-<seq>') and, when ``after`` points inside it ('<entry>:<index>'),
    the entry's events after that index (one XRANGE). A reader whose last event was inside a batch
    entry resumes in it."""
    ms, seq, index = parse_event_id(after)
    entry = f"{ms}-{seq}"
    if index is None:
        return entry, []
    found = await redis.execute_command("XRANGE", qk.event_stream, entry, entry)
    rest = [e for entry_id, raw in found for e in events_of(qk.queue, entry_id, raw)]
    # A plain entry's one event counts as index 0.
    return entry, [e for e in rest if (parse_event_id(e.id)[2] or 0) > index]


async def read_after(redis: Any, qk: QueueKeys, after: str, count: int = 500) -> list[JobEvent]:
    """The queue's events after event id ``after`` ('0-0': from the start): those left in its entry,
    then up to ``count`` entries' (so fewer than ``count`` events only when the stream ends there)."""
    entry, out = await _rest_of(redis, qk, after)
    entries = await redis.execute_command("XRANGE", qk.event_stream, f"({entry}", "+", "COUNT", count)
    return out + [e for entry_id, raw in entries for e in events_of(qk.queue, entry_id, raw)]


async def last_id(redis: Any, qk: QueueKeys) -> str:
    """The newest entry id of the queue's stream ('0-0' when empty): 'from now on'."""
    entries = await redis.execute_command("XREVRANGE", qk.event_stream, "+", "-", "COUNT", 1)
    return _s(entries[0][0]) if entries else "0-0"


async def read_blocking(
    redis: Any, cursors: Mapping[str, str], keys: Mapping[str, QueueKeys], block_ms: int, count: int = 500
) -> list[JobEvent]:
    """The events after each queue's cursor (an event id), waiting up to ``block_ms`` for one (XREAD
    BLOCK over every queue's stream at once: one connection, held while it waits). Empty on timeout.
    A cursor inside a batch entry gets the rest of that entry first, without waiting."""
    names = list(cursors)
    starts: list[str] = []
    rest: list[JobEvent] = []
    for q in names:
        entry, left = await _rest_of(redis, keys[q], cursors[q])
        starts.append(entry)
        rest += left
    if rest:
        return rest
    reply = await redis.execute_command(
        "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS",
        *(keys[q].event_stream for q in names), *starts,
    )  # fmt: skip
    if not reply:
        return []
    by_key = {keys[q].event_stream: q for q in names}
    streams = reply.items() if isinstance(reply, Mapping) else reply
    out: list[JobEvent] = []
    for key, entries in streams:
        queue = by_key[_s(key)]
        out += [e for entry_id, raw in entries for e in events_of(queue, entry_id, raw)]
    return out


class Cursor:
    """Where a reader of one or more queues is: the last entry id seen per queue. As a Last-Event-ID
    it reads 'queue=<event id>' joined by commas (queue names hold no '=' or ',')."""

    def __init__(self, positions: Mapping[str, str]) -> None:
        self.positions = dict(positions)

    def text(self) -> str:
        return ",".join(f"{q}={pos}" for q, pos in self.positions.items())

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Raises ``ValueError`` naming what is wrong."""
        positions: dict[str, str] = {}
        for part in text.split(","):
            queue, sep, pos = part.strip().partition("=")
            if not sep:
                raise ValueError("expected 'queue=<event id>' items separated by commas")
            validate_queue_name(queue)
            parse_event_id(pos)
            positions[queue] = pos
        return cls(positions)
