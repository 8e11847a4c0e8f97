"""``ratbench train``: train one policy, resume a run, or run a training suite."""

from __future__ import annotations

import click

from ratbench.errors import RatbenchError

ALGO_CHOICES = ("npg", "ppo", "pg")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--env", "env", default=None, help="Task: short name (hopper, humanoid, cartpole, ...) or gymnasium id.")
@click.option("--algo", default=None, help="npg (natural gradient, default), ppo or pg.")
@click.option("--solver", default=None, help="Natural-gradient solver for npg (default kaczmarz = RAT); same names as `ratbench accuracy --solver`.")
@click.option("--arch", default=None, help="separate (default) or shared actor-critic.")
@click.option("--steps", type=int, default=None, help="Total environment steps.")
@click.option("--seed", type=int, default=None, help="Random seed (default 0).")
@click.option("--preset", default=None, help="reference: the reference RAT code's exact setup (docs/reference-preset.md), applied after the task layers.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="YAML file of config overrides.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override one config key (dotted, e.g. npg.lr=0.01); repeatable.")
@click.option("--logdir", default=None, help="Run directory (default runs/<env>-<algo>-<solver>-s<seed>-<time>).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None, help="Continue the run in this directory.")
@click.option("--device", default=None, help="cpu (default) or cuda.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads (default: this run's share of the cores, minus cores other processes keep busy).")
@click.option("--suite", "suite_file", type=click.Path(dir_okay=False), default=None, help="Run every run of a training suite YAML.")
@click.option("--print-commands", is_flag=True, help="With --suite: print one `ratbench train` command per run instead of running.")
@click.option("--jobs", type=int, default=1, show_default=True, help="With --suite: runs at once (separate processes).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(env, algo, solver, arch, steps, seed, preset, config_file, sets, logdir, resume_dir, device, threads, suite_file,
          print_commands, jobs, quiet) -> None:
    """Train a policy on a MuJoCo / classic-control task with any solver (default: RAT on Hopper)."""
    from ratbench.training import Trainer, resolve_config

    explicit = {"env": env, "algo": algo, "solver": solver, "arch": arch, "steps": steps, "seed": seed, "device": device,
                "preset": preset, "threads": threads}
    if suite_file:
        from ratbench.training.suite import run_suite

        if resume_dir or any(v is not None for v in explicit.values()) or config_file or sets or logdir:
            raise RatbenchError("--suite takes no other run options; put them in the suite file")
        run_suite(suite_file, print_commands=print_commands, jobs=jobs, progress_bar=not quiet)
        return
    if print_commands:
        raise RatbenchError("--print-commands needs --suite FILE")
    if algo is not None and algo not in ALGO_CHOICES:
        from ratbench.errors import unknown_name

        raise unknown_name("algorithm", algo, ALGO_CHOICES)
    if resume_dir:
        given = [k for k, v in explicit.items() if v is not None and k not in ("steps", "device", "threads")]
        if given or config_file or sets or logdir:
            raise RatbenchError("--resume continues a run with its saved config; only --steps, --device and --threads may be given with it")
        trainer = Trainer.resume(resume_dir, steps=steps, device=device, threads=threads, progress_bar=not quiet)
    else:
        config = resolve_config(explicit, config_file=config_file, sets=sets)
        trainer = Trainer.create(config, logdir=logdir, progress_bar=not quiet)
    click.echo(f"run directory: {trainer.run_dir} ({trainer.threads} torch thread{'s' if trainer.threads > 1 else ''})", err=True)
    summary = trainer.train()
    if summary["interrupted"]:
        click.echo(f"interrupted at iteration {summary['iterations']}; continue with: ratbench train --resume {trainer.run_dir}", err=True)
        raise SystemExit(130)
    last = summary["eval_return"]
    click.echo(f"done: {summary['env_steps']} steps, {summary['iterations']} iterations, "
               f"last eval return {last if last is None else round(last, 2)}; run directory {trainer.run_dir}")
