import pytest

from visual_search.ingest.pacing import Pacer


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_fast_work_is_held_to_the_rate():
    t = FakeTime()
    pacer = Pacer(4, clock=t.clock, sleep=t.sleep)
    for _ in range(9):
        pacer.wait()
    assert t.now == pytest.approx(102.0)  # 9 units at 4/s: the 9th starts 2 s after the first


def test_slow_work_is_never_slowed_further():
    t = FakeTime()
    pacer = Pacer(4, clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        pacer.wait()
        t.now += 1.0  # each unit takes longer than the interval
    assert t.slept == []


def test_no_rate_means_no_waiting_and_a_non_positive_rate_is_refused():
    t = FakeTime()
    Pacer(None, clock=t.clock, sleep=t.sleep).wait()
    assert t.slept == []
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)
