import pytest

from decodebench.methods.speculative import Round, round_stats


def test_definitions():
    s = round_stats([Round(proposed=4, accepted=4, depth=4), Round(proposed=4, accepted=0, depth=4),
                     Round(proposed=6, accepted=2, depth=3)])
    assert s["rounds"] == 3
    assert s["acceptance_rate"] == pytest.approx(6 / 14)
    assert s["tokens_per_round"] == pytest.approx(6 / 3 + 1)
    assert s["acceptance_by_depth"] == pytest.approx([2 / 3, 2 / 3, 1 / 3, 1 / 2])


def test_accepting_more_than_proposed_is_refused():
    with pytest.raises(ValueError):
        Round(proposed=2, accepted=3, depth=3)
