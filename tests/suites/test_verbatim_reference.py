"""suites/parity/verbatim_reference.py: a bad --reference is refused in one sentence; with a checkout of
agent-lab/ICML2026-RAT named by RATBENCH_REFERENCE, the reference's own updates agree with ratbench's preset.

The comparison needs the reference checkout, which CI does not have. Both tests run the tool as a command, in a
process of its own: it puts the checkout's top-level packages (utils, kfac, tests) first on sys.path and sets
float64 as the default dtype, neither of which belongs in the test process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "suites" / "parity" / "verbatim_reference.py"


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=timeout)


def test_a_directory_without_train_detach_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "utils").mkdir()  # something, but not the reference
    done = _run("--reference", str(tmp_path), "--solver", "cg")
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip() == f"--reference {tmp_path} is not a checkout of agent-lab/ICML2026-RAT: no train_detach.py"


def test_a_missing_reference_path_is_refused_in_one_sentence(tmp_path):
    done = _run("--reference", str(tmp_path / "absent"))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"--reference {tmp_path / 'absent'} does not exist"


@pytest.mark.skipif(not os.environ.get("RATBENCH_REFERENCE"),
                    reason="set RATBENCH_REFERENCE to a checkout of agent-lab/ICML2026-RAT to run the comparison")
def test_the_reference_updates_run_verbatim_agree_with_the_preset():
    """Every solver, fresh and clamped ratios, at reduced sizes (2 epochs x 4 minibatches x 2 rollouts, batch 48)."""
    done = _run("--reference", os.environ["RATBENCH_REFERENCE"], "--epochs", "2", "--minibatches", "4",
                "--rollouts", "2", "--batch", "48", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum("parameters rel gap" in line for line in lines) == 4 * 2 * 2  # solvers x variants x rollouts
    for update in ("RAT_ActorUpdate", "TrustRegion_ActorUpdate", "diag_ActorUpdate", "KFAC_ActorUpdate"):
        assert any(update in line for line in lines), update
    assert lines[-1].startswith("verdict: PASS")
