"""Which healing step is kept (the healing runs themselves are in test_distill.py)."""
from helpers.heal_selection import Selection, agreements_logged, select_step


def test_the_best_step_wins_and_the_start_wins_a_tie():
    history = [{"step": 0, "held_out_agreement": 0.5}, {"loss": 1.0, "step": 2}, {"step": 4, "held_out_agreement": 0.6},
               {"step": 8, "held_out_agreement": 0.55}]
    assert agreements_logged(history) == [(0, 0.5), (4, 0.6), (8, 0.55)]
    assert select_step(agreements_logged(history)) == Selection(((0, 0.5), (4, 0.6), (8, 0.55)), kept_step=4)
    assert select_step([(0, 0.5), (4, 0.5)]).kept_step == 0
    assert "kept the starting weights" in select_step([(0, 0.5), (4, 0.4)]).describe()
    assert select_step([]) is None
