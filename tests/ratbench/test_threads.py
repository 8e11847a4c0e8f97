"""Thread defaults: a run's share of the cores, passive OpenMP waiting before torch loads."""

import os
import subprocess
import sys

import pytest

from ratbench import threads
from ratbench.threads import auto_threads


@pytest.mark.parametrize("cores,jobs,busy,expected", [
    (2, 1, 0.0, 2), (2, 2, 0.0, 1), (2, 1, 1.0, 1), (2, 1, 3.7, 1), (16, 4, 0.0, 4), (16, 1, 10.2, 6), (1, 1, 0.0, 1),
])
def test_share_of_the_cores_minus_busy_ones(monkeypatch, cores, jobs, busy, expected):
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    assert auto_threads(jobs=jobs, busy=busy) == expected


def test_suite_children_read_their_job_count(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    monkeypatch.setenv(threads.JOBS_VARIABLE, "4")
    assert auto_threads(busy=0.0) == 2
    monkeypatch.setenv(threads.JOBS_VARIABLE, "garbage")
    assert auto_threads(busy=0.0) == 8


def test_busy_cores_come_from_proc_stat_between_two_readings(monkeypatch):
    readings = iter([(1000, 4000), (1300, 4400)])  # 300 of 400 jiffies busy
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(readings))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    assert threads.busy_cores(0.0) == pytest.approx(3.0)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc/stat")
def test_a_real_busy_process_is_counted_at_once():
    """The 1-minute load average lags by a minute; the /proc/stat reading sees a process within a second."""
    cores = os.cpu_count() or 1
    idle = threads.busy_cores(0.5)
    if idle > cores - 1:
        pytest.skip(f"this machine is already busy ({idle:.1f} of {cores} cores)")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)
        assert threads.busy_cores(0.5) >= idle + 0.6
    finally:
        spinner.kill()
        spinner.wait()


def test_importing_ratbench_asks_for_passive_waiting_unless_the_user_chose():
    code = "import os, ratbench; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout.strip() == "ACTIVE"


def test_compute_threads_size_torch_and_scipys_blas_alike():
    """ratbench.symmetric runs on SciPy's OpenBLAS, whose own pool would otherwise take every core."""
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    before = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS pools on exit
        try:
            assert threads.set_compute_threads(1) == 1
            assert torch.get_num_threads() == 1
            blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
            assert blas and all(pool["num_threads"] == 1 for pool in blas)
        finally:
            torch.set_num_threads(before)


def test_torch_threads_restores_the_count_even_after_an_error():
    import torch

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with threads.torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before
