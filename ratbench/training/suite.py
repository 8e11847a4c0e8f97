"""Training suites: a YAML list of runs expanded over envs x runs x seeds.

Spec (see suites/training/*.yaml)::

    logdir: runs/suites/mujoco     # every run gets <logdir>/<env>-<algo>-<solver>[-<name>]-s<seed>
    envs: [hopper, walker2d]
    seeds: [0, 1, 2]
    steps: 1000000                 # optional, per-run budget
    set: {threads: 1}              # optional --set overrides for every run
    runs:
      - {algo: npg, solver: kaczmarz}
      - {algo: npg, solver: kaczmarz, name: original, set: {npg.rat_variant: original}}
      - {algo: ppo}
      - {algo: npg, name: shared, arch: shared, seeds: [0], steps: 2000000}   # per-run seeds / steps
      - {algo: npg, name: relu, envs: [hopper], set: {model.activation: relu}}  # a subset of the suite's envs

A run whose directory already holds a checkpoint is resumed (a finished one
returns at once), so re-running a suite completes it. A run another process
is training (its directory's lock is held, see run_lock.py) is skipped, so
several runners, on one machine or on machines sharing the file system, can
work through one suite together. Runs already collected as finished into a ``collected`` results folder are
left out (:mod:`ratbench.training.suite_collected`), ``only`` keeps the runs whose directory name matches one of
its shell patterns (one seed, task or method of a suite, with the suite's own commands), and ``task_major`` orders
the queue task by task. ``print_commands``
prints one ``ratbench train`` command per run (for a cluster); ``jobs > 1``
runs that many at once as separate processes.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
from collections import Counter
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import click

from ratbench.errors import RatbenchError
from ratbench.threads import JOBS_VARIABLE
from ratbench.training.config import canonical_env_name, load_yaml_file, resolve_config
from ratbench.training.suite_collected import by_task, is_collected
from ratbench.training.suite_run import SuiteRun, report_busy, run_one, skip_busy
from ratbench.training.run_lock import BUSY_EXIT_CODE, RunBusyError, is_busy
from ratbench.values import SEED_MAX, is_int

SUITE_KEYS = {"name", "description", "logdir", "envs", "seeds", "steps", "set", "runs"}
RUN_KEYS = {"algo", "solver", "arch", "name", "set", "seeds", "steps", "envs"}
KEY_TYPES = {  # key: (the test its value passes when given, what it must be)
    "logdir": (lambda v: isinstance(v, str), "a directory path"),
    "envs": (lambda v: isinstance(v, list), "a list of env names"),
    "seeds": (lambda v: isinstance(v, list) and all(is_int(s) and 0 <= s <= SEED_MAX for s in v),
              f"a list of seeds (integers from 0 to {SEED_MAX})"),
    "set": (lambda v: isinstance(v, dict), "a mapping of config keys to values, like {threads: 1}"),
    "runs": (lambda v: isinstance(v, list), "a list of runs, like [{algo: npg, solver: kaczmarz}]"),
}


def _check_keys(found: dict, allowed: set[str], where: str) -> None:
    """An unknown key, or an allowed one whose value fails its :data:`KEY_TYPES` test, is one sentence naming ``where``."""
    bad = sorted(set(found) - allowed)
    if bad:
        raise RatbenchError(f"{where} has unknown key(s) {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")
    for key, (ok, kind) in KEY_TYPES.items():
        if key in allowed and found.get(key) is not None and not ok(found[key]):
            raise RatbenchError(f"{where}: {key} must be {kind}, got {found[key]!r}")


def _env(name: object, where: str) -> str:
    """The canonical name of a suite's env ``name``; an unknown one is refused naming ``where``."""
    try:
        return canonical_env_name(str(name))
    except RatbenchError as error:
        raise RatbenchError(f"{where}: {error}") from None


def load_suite(path: str | Path) -> list[SuiteRun]:
    """Expand a suite file into its runs (envs x runs x seeds, in that order)."""
    spec = load_yaml_file(path, "suite file", "give --suite a suite file, e.g. suites/training/mujoco.yaml")
    _check_keys(spec, SUITE_KEYS, f"suite {str(path)!r}")
    if not spec.get("runs") or not spec.get("envs"):
        raise RatbenchError(f"suite {str(path)!r} needs non-empty 'envs' and 'runs' lists")
    root = Path(spec.get("logdir") or f"runs/suites/{Path(path).stem}")
    common = dict(spec.get("set") or {})
    runs = []
    envs = [_env(env, f"suite {str(path)!r}") for env in spec["envs"]]
    only: list[set[str]] = []  # per run entry: the envs it runs on
    for entry in spec["runs"]:
        if not isinstance(entry, dict):
            raise RatbenchError(f"suite {str(path)!r}: each run must be a mapping like {{algo: npg, solver: kaczmarz}}")
        _check_keys(entry, RUN_KEYS, f"a run of suite {str(path)!r}")
        named = {_env(e, f"a run of suite {str(path)!r}") for e in entry.get("envs") or []}
        if named - set(envs):
            raise RatbenchError(f"suite {str(path)!r}: a run's envs must be among the suite's ({', '.join(envs)}); "
                                f"not: {', '.join(sorted(named - set(envs)))}")
        only.append(named or set(envs))
    for env in envs:
        for entry, entry_envs in zip(spec["runs"], only):
            if env not in entry_envs:
                continue
            for seed in entry.get("seeds") or spec.get("seeds") or [0]:
                algo = entry.get("algo", "npg")
                solver = entry.get("solver", "kaczmarz" if algo == "npg" else None)
                label = "-".join(str(p) for p in (env, algo, solver or "none", entry.get("name")) if p is not None)
                runs.append(SuiteRun(env=env, seed=int(seed), algo=algo, solver=solver, arch=entry.get("arch"),
                                     steps=entry.get("steps", spec.get("steps")), sets={**common, **(entry.get("set") or {})},
                                     logdir=root / f"{label}-s{seed}"))
    seen: dict[Path, SuiteRun] = {}
    for run in runs:
        if run.logdir in seen:
            raise RatbenchError(f"suite {str(path)!r}: two runs would share the directory {str(run.logdir)!r} "
                                "(they differ only in keys the directory name leaves out, such as arch); "
                                "give one of them a name: key")
        seen[run.logdir] = run
    for run in runs:  # validate every config before anything starts
        resolve_config({"env": run.env, "algo": run.algo, "solver": run.solver, "arch": run.arch,
                        "seed": run.seed, "steps": run.steps}, sets=run.set_args(),
                       origin=f"suite {str(path)!r}, run {run.logdir.name}")
    return runs


EXECUTORS = ("local", "ray")


def run_suite(paths: str | Path | Sequence[str | Path], print_commands: bool = False, jobs: int = 1,
              progress_bar: bool = True, executor: str = "local", address: str | None = None,
              trust_checkpoint: bool = False, collected: Sequence[str | Path] = (), task_major: bool = False,
              only: Sequence[str] = ()) -> None:
    """Every run of the suite file(s) ``paths``, in order (several suites form one queue, so ``jobs`` slots stay
    busy across them; ``task_major``: task by task across them), less those collected as finished in a
    ``collected`` folder; with ``only``, just the runs whose directory name (``ant-trpo-none-s3``) matches one of
    those shell patterns. Every file is validated before anything starts."""
    if executor not in EXECUTORS:
        raise RatbenchError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    runs = [run for path in ([paths] if isinstance(paths, (str, Path)) else paths) for run in load_suite(path)]
    clash = sorted(str(logdir) for logdir, n in Counter(r.logdir for r in runs).items() if n > 1)
    if clash:
        raise RatbenchError(f"two suites name the same run directory {clash[0]!r}; queue each run once")
    if task_major:  # the task order is the full queue's, whatever is collected already
        runs = by_task(runs)
    if only:
        runs = select_runs(runs, only)
    if collected:
        folders = [Path(folder) for folder in collected]
        missing = [str(folder) for folder in folders if not folder.is_dir()]
        if missing:
            raise RatbenchError(f"--collected folder {missing[0]} does not exist; give a folder of collected runs")
        to_train = [run for run in runs if not is_collected(run, folders)]
        click.echo(f"{len(runs) - len(to_train)} run(s) already collected as finished, {len(to_train)} to train", err=True)
        runs = to_train
    if print_commands:
        for run in runs:
            click.echo(shlex.join(run.command()))
        return
    if executor == "ray":
        from ratbench.training.ray_executor import run_on_ray

        run_on_ray(runs, address, trust_checkpoint)
        return
    if jobs < 1:
        raise RatbenchError(f"--jobs must be a positive integer, got {jobs}")
    if jobs == 1:
        busy = []
        for i, run in enumerate(runs, 1):
            click.echo(f"[{i}/{len(runs)}] {run.logdir}", err=True)
            try:
                summary = run_one(run, progress_bar, trust_checkpoint)
            except RunBusyError:
                skip_busy(run, busy)
                continue
            if summary["interrupted"]:
                raise KeyboardInterrupt
    else:
        busy = _run_parallel(runs, jobs, trust_checkpoint)
    report_busy(busy)


def select_runs(runs: list[SuiteRun], patterns: Sequence[str]) -> list[SuiteRun]:
    """The runs whose directory name matches one of the shell ``patterns`` (fnmatch: ``*-s4``, ``ant-trpo-*``),
    in queue order; a pattern that matches none of them is refused, naming the directory names there are."""
    names = [run.logdir.name for run in runs]
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            raise RatbenchError(f"--only {pattern!r} matches none of the suite's runs (their directory names: {shown})")
    return [run for run in runs if any(fnmatch.fnmatchcase(run.logdir.name, pattern) for pattern in patterns)]


def _run_parallel(runs: list[SuiteRun], jobs: int, trust_checkpoint: bool = False) -> list[SuiteRun]:
    """At most ``jobs`` runs at once, each a `python -m ratbench train` process with its own log file;
    returns the runs skipped because another process was training them."""
    pending, active, failed, busy = list(enumerate(runs, 1)), [], [], []
    done = 0
    while pending or active:
        while pending and len(active) < jobs:
            number, run = pending.pop(0)
            if is_busy(run.logdir):
                skip_busy(run, busy)
                continue
            run.logdir.mkdir(parents=True, exist_ok=True)
            log = open(run.logdir / "train.log", "ab")
            cmd = run.command()
            if (run.logdir / "checkpoint.pt").is_file():
                cmd = (["ratbench", "train", "--resume", str(run.logdir)] + (["--steps", str(run.steps)] if run.steps else [])
                       + (["--trust-checkpoint"] if trust_checkpoint else []))
            env = {**os.environ, JOBS_VARIABLE: str(jobs)}  # each child's default threads: its share of the cores
            proc = subprocess.Popen([sys.executable, "-m", "ratbench", *cmd[1:], "--quiet"], stdout=log, stderr=log, env=env)
            click.echo(f"[{number}/{len(runs)}] started {run.logdir} (pid {proc.pid})", err=True)
            active.append((run, proc, log))
        time.sleep(1.0)
        for entry in [a for a in active if a[1].poll() is not None]:
            run, proc, log = entry
            active.remove(entry)
            log.close()
            if proc.returncode == BUSY_EXIT_CODE:  # another runner claimed it between our check and the child's
                skip_busy(run, busy)
                continue
            if proc.returncode != 0:
                failed.append(str(run.logdir))
            done += 1
            click.echo(f"finished {run.logdir} (exit {proc.returncode}; {done} of {len(runs)} done)", err=True)
    if failed:
        raise RatbenchError(f"{len(failed)} run(s) failed, see train.log in: {', '.join(failed)}")
    return busy
