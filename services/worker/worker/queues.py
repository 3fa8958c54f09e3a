"""Which queue the next claims go to: smooth weighted round robin (nginx's algorithm).

With weights high:3, default:1 the sequence is high, high, default, high, ...: spread out rather than
bursty, deterministic, and it never starves a queue of weight 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.settings import QueueWeight


class WeightedPicker:
    def __init__(self, queues: Sequence[QueueWeight]) -> None:
        self.names = [q.name for q in queues]
        self.weights = [q.weight for q in queues]
        self.total = sum(self.weights)
        self._current = [0] * len(queues)

    def pick(self) -> int:
        best = 0
        for i, weight in enumerate(self.weights):
            self._current[i] += weight
            if self._current[i] > self._current[best]:
                best = i
        self._current[best] -= self.total
        return best

    def allocate(self, slots: int) -> dict[str, int]:
        """Share ``slots`` claims among the queues by weight, in the picker's order."""
        if len(self.names) == 1:
            return {self.names[0]: slots} if slots > 0 else {}
        counts = [0] * len(self.names)
        for _ in range(slots):
            counts[self.pick()] += 1
        return {name: n for name, n in zip(self.names, counts, strict=True) if n > 0}

    def fallback_order(self) -> list[str]:
        """Queues by descending weight (ties: listed order): where leftover capacity is offered."""
        order = sorted(range(len(self.names)), key=lambda i: -self.weights[i])
        return [self.names[i] for i in order]
