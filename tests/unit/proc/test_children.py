"""The reaper takes the orphans a PID 1 is handed, never a child a pipeline waits for
(issue 27, item 10: it took pg_receivewal's exit status and the WAL stream died)."""

import os

from moonflower.proc.children import exited_children, reap_orphans, track, untrack
from tests.support.waiting import eventually


def spawn_exited() -> int:
    pid = os.posix_spawn("/bin/true", ["true"], {})
    assert eventually(lambda: pid in exited_children(), 30)
    return pid


def test_only_untracked_children_are_reaped() -> None:
    tracked, orphan = spawn_exited(), spawn_exited()
    track(tracked)
    try:
        reap_orphans(as_init=True)
        assert orphan not in exited_children()
        assert tracked in exited_children()
        assert os.waitpid(tracked, 0) == (tracked, 0)  # its status was left for its owner
    finally:
        untrack([tracked])


def test_a_process_that_is_not_init_reaps_nothing() -> None:
    child = spawn_exited()
    reap_orphans()
    assert os.waitpid(child, 0)[0] == child
