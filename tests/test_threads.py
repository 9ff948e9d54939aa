"""`_threads.beside`: the side job has finished when the block ends, and its exception reaches the caller."""
import threading

import pytest

from eternal_engine._threads import beside


def test_the_side_job_runs_on_another_thread_and_is_done_after_the_block():
    seen = []
    with beside(lambda: seen.append(threading.current_thread().name), name="side"):
        pass
    assert seen == ["side"]


def test_an_exception_of_the_side_job_is_raised_in_the_caller():
    def fail():
        raise ValueError("bad column")

    with pytest.raises(ValueError, match="bad column"):
        with beside(fail):
            pass
