"""Thread defaults: a run's share of the cores, passive OpenMP waiting before torch loads."""

import os
import subprocess
import sys

import pytest

from ratbench import threads
from ratbench.threads import auto_threads


@pytest.mark.parametrize("cores,jobs,load,expected", [
    (2, 1, 0.0, 2), (2, 2, 0.0, 1), (2, 1, 1.0, 1), (2, 1, 3.7, 1), (16, 4, 0.0, 4), (16, 1, 10.2, 6), (1, 1, 0.0, 1),
])
def test_share_of_the_cores_minus_busy_ones(monkeypatch, cores, jobs, load, expected):
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    assert auto_threads(jobs=jobs, load=load) == expected


def test_suite_children_read_their_job_count(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    monkeypatch.setenv(threads.JOBS_VARIABLE, "4")
    assert auto_threads(load=0.0) == 2
    monkeypatch.setenv(threads.JOBS_VARIABLE, "garbage")
    assert auto_threads(load=0.0) == 8


def test_importing_ratbench_asks_for_passive_waiting_unless_the_user_chose():
    code = "import os, ratbench; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "ACTIVE"
