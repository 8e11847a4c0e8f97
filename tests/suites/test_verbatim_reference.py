"""suites/parity/verbatim_reference.py: a bad --reference, or --arch shared with cg, is refused in one sentence;
with a checkout of agent-lab/ICML2026-RAT named by RATBENCH_REFERENCE, the reference's own updates (train_detach.py's
and train_shared.py's) agree with ratbench's preset.

The comparison needs the reference checkout, which CI does not have. The tests run the tool as a command, in a
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


def test_the_shared_program_with_cg_is_refused_in_one_sentence(tmp_path):
    done = _run("--reference", str(tmp_path), "--arch", "shared", "--solver", "cg")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("--arch shared --solver cg: train_shared.py has no fvp update (its learn() selects "
                                   "rat, diag or kfac), and ratbench refuses the joint update with cg.")


def test_a_checkout_without_train_shared_is_refused_for_the_shared_program(tmp_path):
    for needed in ("train_detach.py", "utils/cg.py", "utils/utils.py", "kfac/kfac.py"):
        (tmp_path / needed).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / needed).write_text("")
    done = _run("--reference", str(tmp_path), "--arch", "shared")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"--reference {tmp_path} is not a checkout of agent-lab/ICML2026-RAT: "
                                   f"no train_shared.py")


@pytest.mark.skipif(not os.environ.get("RATBENCH_REFERENCE"),
                    reason="set RATBENCH_REFERENCE to a checkout of agent-lab/ICML2026-RAT to run the comparison")
def test_the_reference_updates_run_verbatim_agree_with_the_preset():
    """Both programs, every solver each has, fresh and clamped ratios, at reduced sizes (2 epochs x 4 minibatches x
    2 rollouts, batch 48): train_detach.py's four actor updates against ``--preset reference --solver <solver>``,
    train_shared.py's three joint updates against ``--preset reference --arch shared --solver <solver>``."""
    done = _run("--reference", os.environ["RATBENCH_REFERENCE"], "--arch", "both", "--epochs", "2", "--minibatches",
                "4", "--rollouts", "2", "--batch", "48", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for arch, solvers in (("separate", 4), ("shared", 3)):
        rows = [line for line in lines if line.startswith(arch) and "parameters rel gap" in line]
        assert len(rows) == solvers * 2 * 2, (arch, rows)  # solvers x variants x rollouts
    updates = {"train_detach.py": ("RAT_ActorUpdate", "TrustRegion_ActorUpdate", "diag_ActorUpdate",
                                   "KFAC_ActorUpdate"),
               "train_shared.py": ("RAT_Update", "diag_Update", "KFAC_Update")}
    for script, names in updates.items():
        for update in names:
            assert any(f"{script} {update} " in line for line in lines), update
    assert any("--arch shared --solver kaczmarz" in line for line in lines)
    assert lines[-1].startswith("verdict: PASS")
