"""One training iteration on real MuJoCo Hopper-v5: a rollout plus the NPG update.

Built with the trainer (:class:`ratbench.training.trainer.Trainer`) from the
shipped config for ``hopper``/``npg``, shrunk so one iteration is one solve:
8 sync envs x 128 steps (a 1,024-sample rollout, the speed suite's default N),
one policy epoch with one minibatch, one critic epoch with one minibatch, no
evaluation. Each timed call collects a rollout and updates policy and critic,
so the trainer moves on from call to call, as in training. Every solver, and
RAT's training speed below, run on ratbench's own settings (``preset`` null,
given on the commits that have the key: ``preset: auto`` made the reference
preset RAT's default on Hopper on 2026-12-07), so the solvers and the commits
are timed on equal settings.
"""

import shutil
import tempfile

from .common import light_mode

SOLVERS = ["kaczmarz", "woodbury", "cg", "diagonal", "kfac"]
SHRINK = [
    "num_envs=8",
    "num_steps=128",
    "vector=sync",
    "npg.epochs=1",
    "npg.minibatches=1",
    "critic.epochs=1",
    "critic.minibatches=1",
    "eval.episodes=1",
]


def no_preset() -> list[str]:
    """``preset=null`` where the commit's schema has the key (from cf0976c on), else nothing (no preset then)."""
    from ratbench.training.config import schema

    return ["preset=null"] if "preset" in schema() else []


class TrainingIteration:
    params = [SOLVERS]
    param_names = ["solver"]
    timeout = 900
    repeat = (1, 5, 60.0)
    number = 1

    def setup(self, solver):
        if light_mode() and solver != "kaczmarz":
            raise NotImplementedError("RATBENCH_ASV_LIGHT is set: only the kaczmarz training iteration runs")
        from ratbench.training.config import resolve_config
        from ratbench.training.trainer import Trainer

        config = resolve_config({"env": "hopper", "algo": "npg", "solver": solver, "seed": 0}, sets=SHRINK + no_preset())
        self.run_dir = tempfile.mkdtemp(prefix="ratbench-asv-")
        self.trainer = Trainer(config, self.run_dir, progress_bar=False)

    def teardown(self, solver):
        # asv calls teardown after a skipped setup too.
        if hasattr(self, "trainer"):
            self.trainer.close()
        if hasattr(self, "run_dir"):
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def time_iteration(self, solver):
        batch = self.trainer.collector.collect()
        self.trainer.algo.update(batch, 0.0)


class TrainingSpeedReport:
    """`ratbench speed --training hopper --set preset=null` (RAT on ratbench's settings) as tracked numbers:
    the ratio of training steps/s to random-action steps/s of the same vector env, and the update time per 8,192 samples.
    Light mode (CI) shrinks the rollout to 8 x 128 and times one iteration."""

    timeout = 900

    def setup_cache(self):
        from ratbench.training.speed_report import as_dict, measure_training

        sets = ["threads=1"] + no_preset() + (["num_envs=8", "num_steps=128"] if light_mode() else [])
        return as_dict(measure_training("hopper", solver="kaczmarz", sets=sets, iterations=1 if light_mode() else 3))

    def track_training_to_random_ratio(self, report):
        return report["ratio"]

    track_training_to_random_ratio.unit = "ratio"

    def track_update_seconds_per_8192(self, report):
        return report["update_s_per_8192"]

    track_update_seconds_per_8192.unit = "seconds"
