"""suites/parity/verbatim_reference.py: a bad --reference (missing, not a checkout, an unreadable config, a selection
chain it cannot read, code that raises), a bad --ratbench-set, or --arch shared with cg, is refused in one sentence;
with a checkout of agent-lab/ICML2026-RAT named by RATBENCH_REFERENCE, the reference's own updates (train_detach.py's
and train_shared.py's) agree with ratbench's preset, and the comparison fails where ratbench's side is changed or the
reference's parameters do not move.

The comparison needs the reference checkout, which CI does not have; the refusals run on fake checkouts written
here (a train_detach.py with just the statements the tool looks for). The tests run the tool as a command, in a
process of its own: it puts the checkout's top-level packages (utils, kfac, tests) first on sys.path and sets
float64 as the default dtype, neither of which belongs in the test process.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "suites" / "parity" / "verbatim_reference.py"
UNUSABLE = "is not a usable checkout of agent-lab/ICML2026-RAT"
needs_reference = pytest.mark.skipif(not os.environ.get("RATBENCH_REFERENCE"),
                                     reason="set RATBENCH_REFERENCE to a checkout of agent-lab/ICML2026-RAT to run "
                                            "the comparison")

# A train_detach.py with what the tool reads: learn()'s set-up names, an update, the selection chain, a minibatch
# loop that sets mbinds and calls the update, the KL rule; train_fn()'s networks, built by the checkout's utils.
FAKE_DETACH = """\
from utils.utils import build_network


def learn(algo, algo_config):
    params_pi = dict_params = dict_buffers = pi_optimizer = pi_scheduler = make_flat = get_flat_grad = None

    def RAT_ActorUpdate(mb_obs):
        return None

    if algo in {"rat", "fvp", "diag", "kfac"}:
        update_actor = RAT_ActorUpdate
    for start in range(0, 8, 4):
        mbinds = list(range(start, start + 4))
        update_actor(mbinds)
    if algo_config.use_kl_adaptive_lr:
        pass


def train_fn():
    fn_neural_nets = None
    actor_critic = build_network()
"""
FAKE_UTILS = """\
def build_network():
    raise RuntimeError("no network here\\nand a second line")
"""
FAKE_CONFIG = "algo: rat\nalgo_config:\n  use_kl_adaptive_lr: true\nnets_config:\n  type: mlp\n"
SEPARATE_CONFIGS = ("rat_mlp.yaml", "fvp_mlp.yaml", "diag_mlp.yaml", "kfac_mlp.yaml")


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=timeout)


def _fake_checkout(root: Path, script: str = FAKE_DETACH, rat_config: bytes = FAKE_CONFIG.encode()) -> Path:
    """A directory that passes the tool's file checks for --arch separate, configs/rat_mlp.yaml ``rat_config``."""
    files = {"train_detach.py": script.encode(), "utils/utils.py": FAKE_UTILS.encode(), "utils/cg.py": b"",
             "kfac/kfac.py": b"", **{f"configs/{name}": FAKE_CONFIG.encode() for name in SEPARATE_CONFIGS},
             "configs/rat_mlp.yaml": rat_config}
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def _refused(done: subprocess.CompletedProcess) -> str:
    """The one sentence of a refusal (exit status 2, nothing on stdout, no traceback)."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


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


def test_a_config_that_is_not_utf8_is_refused_in_one_sentence(tmp_path):
    root = _fake_checkout(tmp_path, rat_config=b"algo: rat\n# \xff\n" + FAKE_CONFIG.encode())
    sentence = _refused(_run("--reference", str(root), "--arch", "separate"))
    assert sentence == f"--reference {root} {UNUSABLE}: configs/rat_mlp.yaml is not UTF-8 (invalid start byte at byte 12)"


@pytest.mark.parametrize("config, problem", [
    ("algo: rat\nalgo_config: null\nnets_config: {type: mlp}\n", "'s algo_config is empty (null), not a mapping"),
    ("algo: rat\nalgo_config: {use_kl_adaptive_lr: true}\nnets_config: [mlp]\n", "'s nets_config is list, not a mapping"),
    ("algo: rat\nalgo_config: {1: true}\nnets_config: {type: mlp}\n", "'s algo_config has a key that is not a string (1)"),
    ("algo: [rat]\nalgo_config: {}\nnets_config: {}\n", "'s algo is ['rat'], not a string"),
    ("- algo\n- rat\n", " does not set algo, algo_config and nets_config"),
    ("algo: rat\nalgo_config: {a: [}\n", " is not YAML"),
])
def test_a_config_of_the_wrong_shape_is_refused_in_one_sentence(tmp_path, config, problem):
    root = _fake_checkout(tmp_path, rat_config=config.encode())
    sentence = _refused(_run("--reference", str(root), "--arch", "separate"))
    assert sentence.startswith(f"--reference {root} {UNUSABLE}: configs/rat_mlp.yaml{problem}"), sentence


def test_a_selection_chain_that_is_not_a_literal_set_is_refused_in_one_sentence(tmp_path):
    script = FAKE_DETACH.replace('{"rat", "fvp", "diag", "kfac"}', "{RAT}")
    root = _fake_checkout(tmp_path, script=script)
    line = script.splitlines().index("    if algo in {RAT}:") + 1
    sentence = _refused(_run("--reference", str(root), "--arch", "separate"))
    assert sentence == (f"--reference {root} {UNUSABLE}: train_detach.py:{line}'s selection chain tests algo against "
                        f"{{RAT}}, not a literal set")


def test_an_exception_in_the_checkouts_code_is_reported_in_one_sentence(tmp_path):
    """The fake train_fn() builds its network with utils.utils.build_network, which raises: the sentence names the
    script's line, the module's line the traceback ends in, and the exception's first line."""
    root = _fake_checkout(tmp_path)
    line = FAKE_DETACH.splitlines().index("    actor_critic = build_network()") + 1
    sentence = _refused(_run("--reference", str(root), "--arch", "separate", "--solver", "kaczmarz",
                             "--variant", "fresh"))
    assert sentence == (f"--reference {root}: train_detach.py's network (train_fn()'s actor_critic) failed at "
                        f"train_detach.py:{line}, in utils/utils.py:2 (build_network): RuntimeError: no network here")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_commit_of_a_git_checkout_is_printed(tmp_path):
    root = _fake_checkout(tmp_path)
    git = ["git", "-C", str(root), "-c", "user.name=ratbench", "-c", "user.email=ratbench@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "fake"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    done = _run("--reference", str(root), "--arch", "separate", "--solver", "kaczmarz", "--variant", "fresh")
    assert done.returncode == 2 and "Traceback" not in done.stderr  # the fake's network still raises
    assert done.stdout.splitlines() == [f"reference: {root} at commit {commit} (ratbench follows "
                                        f"agent-lab/ICML2026-RAT's main branch at c49b552)"]


def test_a_ratbench_set_that_ratbench_refuses_is_refused_in_one_sentence(tmp_path):
    sentence = _refused(_run("--reference", str(tmp_path), "--ratbench-set", "npg.bogus=1"))
    assert sentence.startswith("--ratbench-set: unknown config key 'npg.bogus'"), sentence


@needs_reference
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


@needs_reference
def test_dropping_the_momentum_on_ratbenchs_side_fails_the_comparison():
    """The comparison can fail: ``npg.momentum=0`` on ratbench's side only (the reference's SGD keeps its 1e-6, so
    RAT_ActorUpdate's g_k differs) moves the parameters by about 1.2e-7 at the defaults, 11x the tolerance."""
    done = _run("--reference", os.environ["RATBENCH_REFERENCE"], "--ratbench-set", "npg.momentum=0",
                "--solver", "kaczmarz", "--arch", "separate", timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.splitlines()[-1].startswith("verdict: FAIL: largest gap against its tolerance"), done.stdout


@needs_reference
def test_a_reference_whose_parameters_do_not_move_fails(tmp_path):
    """rat_mlp.yaml's lr_pi set to 0 in a copy of the checkout: the reference's update runs and changes nothing
    (clamped: no KL rule to raise the step size); that fails, whatever the gap."""
    reference = Path(os.environ["RATBENCH_REFERENCE"])
    for name in ("train_detach.py", "utils", "kfac", "configs"):
        copy = shutil.copytree if (reference / name).is_dir() else shutil.copy
        copy(reference / name, tmp_path / name)
    config = tmp_path / "configs" / "rat_mlp.yaml"
    text = config.read_text()
    assert "lr_pi: 0.05" in text
    config.write_text(text.replace("lr_pi: 0.05", "lr_pi: 0.0"))
    done = _run("--reference", str(tmp_path), "--arch", "separate", "--solver", "kaczmarz", "--variant", "clamped",
                "--epochs", "1", "--minibatches", "2", "--rollouts", "1", "--batch", "24", timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == (
        "verdict: FAIL: the reference's parameters did not move over separate kaczmarz clamped "
        "(||theta_end - theta_0|| = 0): its update ran but changed nothing, so there is nothing to compare")
