"""A forked process (a worker's children, a pre-fork web server) makes job ids of its own: the random
bytes ``new_job_id`` reads ahead are not shared with the parent."""

from __future__ import annotations

import os
import sys

import pytest

from taskq.models import new_job_id


def _random_part(job_id: str) -> str:
    return job_id.replace("-", "")[16:]  # the variant and rand_b: 62 random bits


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_job_id()  # the parent has random bytes read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then exit at once (no pytest teardown in it)
        try:
            os.write(write, new_job_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    parent_id = new_job_id()
    with os.fdopen(read, "rb") as pipe:
        child_id = pipe.read().decode()
    os.waitpid(pid, 0)
    assert len(child_id) == 36, child_id
    assert _random_part(child_id) != _random_part(parent_id), (sys.platform, child_id, parent_id)
