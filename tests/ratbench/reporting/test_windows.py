"""Window scores: which points fall in the last 10% of a budget, and evaluations placed at their marks."""

import math

from ratbench.reporting.runs import load_runs
from ratbench.reporting.windows import describe_marks, points, window, window_score
from tests.ratbench.reporting.helpers import write_run


def test_the_window_is_open_below_and_closed_above(tmp_path):
    write_run(tmp_path, "r", [800, 900, 950, 1000, 1100], [1.0, 2.0, 4.0, 6.0, 100.0], budget=1000)
    (run,) = load_runs([tmp_path])[0]
    assert window(1000) == (900, 1000)
    score = window_score(run, "train_return", 1000)
    assert score.steps == (950, 1000) and score.value == 5.0  # 900 is out, 1,100 is past the budget
    assert math.isnan(window_score(run, "eval_return", 1000).value)  # never evaluated: no score


def test_evaluations_sit_at_the_mark_they_stand_for(tmp_path):
    write_run(tmp_path, "r", [8192, 16384], [0.0, 0.0], evals={8192: 5.0, 16384: 7.0}, marks={8192: 10000})
    (run,) = load_runs([tmp_path])[0]
    steps, values = points(run, "eval_return")
    assert steps.tolist() == [10000, 16384] and values.tolist() == [5.0, 7.0]  # the end keeps its own step
    assert points(run, "train_return")[0].tolist() == [8192, 16384]  # training rows stay where they were logged


def test_marks_are_described_compactly():
    assert describe_marks(()) == "none"
    assert describe_marks((983040,)) == "1 at 983,040"
    assert describe_marks((901120, 983040)) == "2 at 901,120 and 983,040"
    assert describe_marks((2750000, 2800000, 2850000)) == "3 at 2,750,000-2,850,000 every 50,000"
    assert describe_marks((1, 2, 4)) == "3 at 1, 2 and 4"
