"""``ratbench train``: train one policy, resume a run, or run a training suite."""

from __future__ import annotations

from pathlib import Path

import click

from envs.registry import env_names
from ratbench.errors import RatbenchError
from ratbench.training.config import ALGOS, ARCHS, DEVICES, PRESET_CHOICES, PRESETS, preset_given
from solvers import solver_names


def _note_rounding(config: dict) -> None:
    """Say when the budget is not a whole number of iterations (fresh runs and resumes alike)."""
    from ratbench.training.schedule import steps_per_iteration
    from ratbench.training.trainer import rounded_steps

    rounded = rounded_steps(config)
    if rounded != config["steps"]:
        click.echo(f"note: steps round up to whole iterations of {steps_per_iteration(config):,} {config['steps_unit']} "
                   f"steps: {config['steps']:,} -> {rounded:,}", err=True)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--env", "env", default=None, help=f"Task: {', '.join(env_names())}, or a gymnasium id such as Humanoid-v4.")
@click.option("--algo", default=None, help=f"One of {', '.join(ALGOS)} (default npg, the natural gradient).")
@click.option("--solver", default=None, help=f"Natural-gradient solver for npg: {', '.join(solver_names())} (default kaczmarz = RAT).")
@click.option("--arch", default=None, help=f"Actor-critic architecture: {', '.join(ARCHS)} (default separate).")
@click.option("--steps", type=int, default=None, help="Total environment steps.")
@click.option("--seed", type=int, default=None, help="Random seed (default 0).")
@click.option("--preset", default=None, help=f"{' | '.join(PRESET_CHOICES)}: {' | '.join(PRESETS)} is the reference RAT code's exact setup (docs/reference-preset.md), applied after the task layers; none is ratbench's own settings; auto (the default) is the reference preset for RAT on Hopper, Walker2d, HalfCheetah and Ant, where docs/defaults.md's ablation chose it, and none elsewhere.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="YAML file of config overrides.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key (dotted, e.g. npg.lr=0.01); repeatable.")
@click.option("--logdir", default=None, help="Parent directory of the run (default runs/); the run is <logdir>/<env>-<algo>-<solver>-s<seed>-<time>.")
@click.option("--run-dir", "run_dir", default=None, help="Exact run directory (instead of a name under --logdir).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None, help="Continue the run in this directory.")
@click.option("--device", default=None, help=f"One of {', '.join(DEVICES)} (default cpu).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads (default: this run's share of the cores, minus cores other processes keep busy).")
@click.option("--suite", "suite_files", type=click.Path(dir_okay=False), multiple=True,
              help="Run every run of a training suite YAML; repeat to queue several suites (run in the order given, "
                   "--jobs at once across them).")
@click.option("--collected", "collected", type=click.Path(file_okay=False), multiple=True,
              help="With --suite: leave out the runs already collected as finished in this results folder "
                   "(`ratbench report --collect`; same directory name and config); repeatable.")
@click.option("--only", "only", metavar="GLOB", multiple=True,
              help="With --suite: only the runs whose directory name matches this shell pattern (e.g. '*-s4', "
                   "'ant-trpo-*'); repeatable.")
@click.option("--task-major", is_flag=True,
              help="With --suite: run the queue task by task (every suite's runs on its first task, then the next).")
@click.option("--print-commands", is_flag=True, help="With --suite: print one `ratbench train` command per run instead of running.")
@click.option("--jobs", type=int, default=None, help="With --suite: runs at once (separate processes; default 1).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="With --suite: local processes, or one Ray task per run (extra [ray]; run directories come back to the suite's logdir).")
@click.option("--address", default=None, help="With --executor ray: the cluster to join (e.g. auto); default a local Ray instance.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--trust-checkpoint", is_flag=True,
              help="With --resume or --suite: unpickle a checkpoint that is not plain data (one written by ratbench "
                   "before safe checkpoints). Unpickling runs code from the file: only for run directories you trust.")
def train(env, algo, solver, arch, steps, seed, preset, config_file, sets, logdir, run_dir, resume_dir, device, threads, suite_files,
          collected, only, task_major, print_commands, jobs, executor, address, quiet, trust_checkpoint) -> None:
    """Train a policy on a MuJoCo, classic-control, MinAtar, Atari or DMC task with any solver, or PPO / PG
    (default: RAT on Hopper)."""
    from ratbench.training import Trainer, resolve_config

    explicit = {"env": env, "algo": algo, "solver": solver, "arch": arch, "steps": steps, "seed": seed, "device": device,
                "preset": preset, "threads": threads}
    if suite_files:
        from ratbench.training.suite import run_suite

        if resume_dir or any(v is not None for v in explicit.values()) or config_file or sets or logdir or run_dir:
            raise RatbenchError("--suite takes no other run options; put them in the suite file")
        run_suite(suite_files, print_commands=print_commands, jobs=1 if jobs is None else jobs, progress_bar=not quiet, executor=executor,
                  address=address, trust_checkpoint=trust_checkpoint, collected=collected, task_major=task_major,
                  only=only)
        return
    if print_commands or collected or only or task_major or jobs is not None or executor != "local" or address:
        raise RatbenchError("--print-commands, --collected, --only, --task-major, --jobs, --executor and --address need "
                            "--suite FILE")
    if algo is not None and algo not in ALGOS:
        from ratbench.errors import unknown_name

        raise unknown_name("algorithm", algo, ALGOS)
    if resume_dir:
        given = [k for k, v in explicit.items() if v is not None and k not in ("steps", "device", "threads")]
        if given or config_file or sets or logdir or run_dir:
            raise RatbenchError("--resume continues a run with its saved config; only --steps, --device and --threads may be given with it")
        trainer = Trainer.resume(resume_dir, steps=steps, device=device, threads=threads, progress_bar=not quiet,
                                 trust_checkpoint=trust_checkpoint)
    else:
        if trust_checkpoint:
            raise RatbenchError("--trust-checkpoint applies to --resume and --suite only (a new run has no checkpoint)")
        if logdir and run_dir:
            raise RatbenchError("give --logdir (a parent; the run gets its own name) or --run-dir (the exact directory), not both")
        config = resolve_config(explicit, config_file=config_file, sets=sets)
        if config["preset"] is not None and not preset_given(explicit, config_file, sets):  # `auto` chose it
            click.echo(f"note: RAT on {config['env']} runs the {config['preset']} preset, its default there "
                       "(docs/defaults.md); --preset none gives ratbench's own settings", err=True)
        from ratbench.io import check_writable
        from ratbench.training.trainer import default_run_dir

        target = Path(run_dir) if run_dir else default_run_dir(config, logdir or "runs")
        check_writable(target, "the run directory")
        trainer = Trainer.create(config, logdir=target, progress_bar=not quiet)
    _note_rounding(trainer.config)
    click.echo(f"run directory: {trainer.run_dir} ({trainer.threads} torch thread{'s' if trainer.threads > 1 else ''}; "
               f"{trainer.threads_reason})", err=True)
    summary = trainer.train()
    if summary["interrupted"]:
        click.echo(f"interrupted at iteration {summary['iterations']}; continue with: ratbench train --resume {trainer.run_dir}", err=True)
        raise SystemExit(130)
    last = summary["eval_return"]
    click.echo(f"done: {summary['env_steps']} steps, {summary['iterations']} iterations, "
               f"last eval return {last if last is None else round(last, 2)}; run directory {trainer.run_dir}")
