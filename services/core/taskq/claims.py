"""Claim nonces: what makes a claim's outcome recoverable, and its fencing tokens unrepeatable.

Every claim call carries a nonce, 20 random digits. Redis keeps what the call took under it for a
lease (``QueueKeys.claim``) and ends each fencing token it hands out with it (``_lib.lua``).

A claim that ran in Redis but whose reply never came back (a read timeout, a connection dropped by
another path, a blocked pop's deadline, an event loop stalled past the timeout) would strand its
jobs until their leases ran out, and cost each an attempt. Its nonce is kept *in doubt* instead, and
the next claim of that queue sends it again: Redis hands back the jobs that call took (with fresh
leases) rather than claiming more. redis-py's own resend after a dropped connection repeats the same
arguments, so it is recognised the same way.
"""

from __future__ import annotations

import random

#: In-doubt nonces kept per queue. Each names a record Redis keeps for a lease; a worker that lost
#: more replies than this within one lease is cut off, and its oldest claims are being reaped anyway.
DOUBT_LIMIT = 16


def new_nonce() -> str:
    # 64 bits: tokens must not repeat across a Redis that lost its counter, and the nonce is what
    # makes them differ. (random reseeds itself in a forked child, so two processes never share a run.)
    return f"{random.getrandbits(64):020d}"


class ClaimNonces:
    """The nonces of one client's claims whose replies were lost, per queue. A nonce is taken by one
    call at a time, so two calls never replay the same claim (its jobs would be run twice)."""

    def __init__(self) -> None:
        self._doubt: dict[str, list[str]] = {}

    def take(self, queue: str) -> str:
        """A nonce for a claim of ``queue``: the oldest in doubt (its record expires first), or a new one."""
        doubt = self._doubt.get(queue)
        return doubt.pop(0) if doubt else new_nonce()

    def in_doubt(self, queue: str) -> bool:
        """True when the next ``take`` for ``queue`` replays a claim instead of claiming afresh."""
        return bool(self._doubt.get(queue))

    def doubt(self, queue: str, nonce: str) -> None:
        """The call with ``nonce`` got no reply: it may have claimed jobs, ask again with it."""
        doubt = self._doubt.setdefault(queue, [])
        doubt.append(nonce)
        del doubt[:-DOUBT_LIMIT]

    def queues(self) -> list[str]:
        """Queues with claims in doubt."""
        return [queue for queue, doubt in self._doubt.items() if doubt]
