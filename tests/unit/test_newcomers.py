from services.job_api.newcomers import Regulars


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_owner_seen_with_work_unfinished_is_known_for_a_moment_only() -> None:
    clock = Clock()
    regulars = Regulars(remember_s=0.1, clock=clock)
    assert not regulars.known("alice")
    regulars.seen("alice")
    clock.now += 0.09
    assert regulars.known("alice")
    assert not regulars.known("bob")
    clock.now += 0.02
    # Past the moment: asked about again, and forgotten meanwhile.
    assert not regulars.known("alice")
    assert len(regulars) == 0


def test_seen_again_starts_the_moment_again() -> None:
    clock = Clock()
    regulars = Regulars(remember_s=0.1, clock=clock)
    regulars.seen("alice")
    clock.now += 0.08
    regulars.seen("alice")
    clock.now += 0.08
    assert regulars.known("alice")


def test_the_least_recently_seen_go_first_past_the_capacity() -> None:
    clock = Clock()
    regulars = Regulars(remember_s=10, capacity=2, clock=clock)
    for owner in ("a", "b", "c"):
        regulars.seen(owner)
    regulars.seen("b")
    regulars.seen("d")
    assert len(regulars) == 2
    assert [o for o in "abcd" if regulars.known(o)] == ["b", "d"]
