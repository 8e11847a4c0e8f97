"""``ratbench speed``: every solver against a vanilla backward and the per-sample route, in one run."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Optional

import click
import torch
from tqdm import tqdm

from ratbench.benchmarking import speed as sp
from ratbench.benchmarking.measure import cpu_memory_measured
from ratbench.errors import RatbenchError, unknown_name
from ratbench.io import check_writable, write_json
from ratbench.values import SEED
from ratbench.threads import set_compute_threads


def _check_names(kind: str, names: tuple[str, ...], valid: tuple[str, ...] | dict) -> None:
    for name in names:
        if name not in valid:
            raise unknown_name(kind, name, valid)


def _ms(seconds: float) -> str:
    return "-" if not math.isfinite(seconds) else f"{seconds * 1e3:.1f}"


def _ratio_cells(ratio: sp.Ratio, at_most: bool) -> list[str]:
    value = "-" if not math.isfinite(ratio.value) else f"{ratio.value:.1f}x"
    target = "" if ratio.target is None else f"{'<=' if at_most else '>='} {ratio.target:g}x"
    met = {None: "", True: "yes", False: "NO"}[ratio.met]
    return [value, target, met]


def format_table(rows: list[sp.SpeedRow], memory_limit_bytes: int = sp.MEMORY_TARGET_BYTES, peak_measured: bool = True) -> str:
    """The ratio table: one line per method, times in ms, ratios with targets and verdicts (peak "n/a"
    where this machine cannot measure it)."""
    header = [
        "method", "median ms", "IQR ms", "min-max ms",
        "x vanilla", "target", "met", "per-sample / it", "target", "met", "peak MiB",
    ]
    lines = [header]
    for row in rows:
        t = row.timing
        if t.skipped:
            lines.append([t.method, "skipped", "", "", "", "", "", "", "", "", ""])
            continue
        peak = f"{t.peak_bytes / 2**20:.0f}" if peak_measured else "n/a"
        if row.memory_target_met is not None and peak_measured:
            limit = f"< {memory_limit_bytes / 2**30:.0f} GiB"
            peak += f" ({limit if row.memory_target_met else 'NOT ' + limit})"
        lines.append(
            [t.method, _ms(t.median), f"{_ms(t.q1)}-{_ms(t.q3)}", f"{_ms(t.minimum)}-{_ms(t.maximum)}"]
            + _ratio_cells(row.vs_vanilla, at_most=True)
            + _ratio_cells(row.per_sample_speedup, at_most=False)
            + [peak]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))) for line in lines]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(line.rstrip() for line in text)



TARGET_SIZE = "default"
"""The --size the speed targets (ratbench.benchmarking.speed.TARGETS) are stated for."""

@click.command("speed")
@click.option(
    "--solver", "solvers", multiple=True, metavar="NAME",
    help=f"solver method to time; repeat for several. Default: all ({', '.join(sp.SOLVER_METHODS)}). "
    "kaczmarz is one block step over the minibatch (block = N), kaczmarz-sweep one sweep in blocks of 256, cg 10 iterations; "
    f"on request also {', '.join(sp.PRECISION_METHODS)} (float32 refined in float64; the solve in float64).",
)
@click.option(
    "--size", default="default", show_default=True, metavar="NAME",
    help="minibatch size and hidden width: " + ", ".join(f"{k} (N={v.n}, width {v.width})" for k, v in sp.SIZES.items()) + ".",
)
@click.option("--policy", default="mlp-gaussian", show_default=True, metavar="NAME", help=f"policy: {', '.join(sp.POLICIES)}.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda", help="where to run (cuda: synchronised before every clock read).")
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True, help="timed runs per method (after warm-up).")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True, help="untimed runs per method first.")
@click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="torch CPU threads (default: torch's choice). On a machine other processes are using, 1 avoids threads waiting on each other.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="seed of the synthetic minibatch and policy.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="also write every measurement to this JSON file.")
@click.option("--training", "training_env", default=None, metavar="ENV",
              help="instead: the training speed report for this task (time per phase of real iterations, and training "
              "steps/s against random-action steps/s of the same vector env); --solver picks the solver (or ppo / pg).")
@click.option("--iterations", type=click.IntRange(min=1), default=3, show_default=True, help="with --training: timed iterations.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="with --training: config overrides, as for `ratbench train`.")
def speed(
    solvers: tuple[str, ...],
    size: str,
    policy: str,
    device: str,
    repeat: int,
    warmup: int,
    threads: Optional[int],
    seed: int,
    json_path: Optional[Path],
    training_env: Optional[str],
    iterations: int,
    sets: tuple[str, ...],
) -> None:
    """Time every solver's direction on one minibatch, with a vanilla backward and the per-sample route.

    Everything is measured in this one run: each method is warmed up, then run
    --repeat times; the table gives the median, the interquartile range and
    the min-max of the wall times, the ratio to a vanilla policy-gradient
    backward on the same minibatch and the per-sample route's time over the
    method's, each beside its target (printed, never asserted), and the peak
    extra memory of the runs. Other processes on the machine add noise: read
    the spread, and repeat more on a busy machine.
    """
    given = {name for name in ("size", "policy", "repeat", "warmup", "iterations", "sets")
             if click.get_current_context().get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    if training_env is None and given & {"iterations", "sets"}:
        raise RatbenchError("--iterations and --set belong to the training report; add --training ENV")
    if training_env is not None and given & {"size", "policy", "repeat", "warmup"}:
        raise RatbenchError("--size, --policy, --repeat and --warmup time one synthetic minibatch; the training "
                            "report (--training) times real iterations: give --iterations instead")
    if json_path is not None:
        check_writable(json_path, "the JSON file")
    if training_env is not None:
        _training_report(training_env, solvers, sets, iterations, threads, device, seed, json_path)
        return
    _check_names("solver method", solvers, sp.SOLVER_METHODS + sp.PRECISION_METHODS)
    if size not in sp.SIZES:
        raise unknown_name("size", size, sp.SIZES)
    if policy not in sp.POLICIES:
        raise unknown_name("policy name", policy, sp.POLICIES)
    torch_device = sp.check_device(device)
    if threads is not None:
        set_compute_threads(threads)
    chosen = list(dict.fromkeys(solvers)) or list(sp.SOLVER_METHODS)
    n, width = sp.SIZES[size].n, sp.SIZES[size].width
    if policy in sp.FRAME_POLICIES:  # pixel workloads keep their published dense width
        width = sp.FRAME_POLICIES[policy].width
    problem = sp.build_problem(n, width, policy, torch_device, seed)

    methods = ["vanilla", "per-sample"] + chosen
    skipped: dict[str, str] = {}
    if not sp.per_sample_feasible(problem):
        skipped["per-sample"] = (
            f"the per-sample route is skipped: it would hold about {2 * sp.jacobian_bytes(problem) / 2**30:.1f} GiB "
            f"for J (limit {sp.PER_SAMPLE_MAX_BYTES / 2**30:.0f} GiB)"
        )
    measured = [m for m in methods if m not in skipped]
    with tqdm(total=(warmup + repeat) * len(measured), desc="measuring", unit="run", file=sys.stderr, leave=False, disable=None) as bar:
        try:
            measured_timings = sp.measure_methods(
                measured, problem, repeat, warmup, on_run=lambda method: (bar.set_postfix_str(method), bar.update(1))
            )
        except torch.OutOfMemoryError:
            raise RatbenchError(f"out of memory at size {size!r} on {device}; try a smaller --size") from None
    timings = {m: measured_timings[m] if m in measured_timings else sp.skipped_timing(m, skipped[m]) for m in methods}

    peak_measured = device == "cuda" or cpu_memory_measured()
    memory_targets = peak_measured and sp.memory_target_applies(policy, n)
    rows = sp.speed_rows(timings, memory_targets=memory_targets, policy=policy)
    jac = sp.jacobian_bytes(problem)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    click.echo(
        f"ratbench speed: {policy}, N={n}, width {width}, P={problem.num_params:,}, {device} "
        f"({torch.get_num_threads()} torch threads, {cores} cores, load average {load:.1f}); "
        f"{repeat} timed runs per method after {warmup} warm-up"
    )
    click.echo(f"N x P score matrix J would take {jac / 2**20:,.0f} MiB in {str(problem.dtype).replace('torch.', '')}.")
    click.echo(format_table(rows, sp.memory_target_bytes(policy), peak_measured))
    click.echo(
        "x vanilla: method median / vanilla-backward median (lower is better); per-sample / it: per-sample-route "
        "median / method median (higher is better). Targets are printed, not enforced; "
        f"peak: most extra memory seen in one run ({'CUDA allocator' if device == 'cuda' else 'process RSS, sampled'}); "
        f"{', '.join(sp.MEMORY_TARGET_METHODS)} must stay under {sp.memory_target_bytes(policy) / 2**30:.0f} GiB "
        "(never materialise J)" + ("." if memory_targets or not peak_measured else f"; that target is stated for smaller N, not checked at N={n}.")
    )
    if size != TARGET_SIZE:
        stated = sp.SIZES[TARGET_SIZE]
        click.echo(f"Note: the speed targets are stated for --size {TARGET_SIZE} (N={stated.n:,}, width {stated.width}); at "
                   f"--size {size} they are printed for comparison, and fixed per-call costs weigh differently, so a "
                   "verdict here says little about the targets.")
    if not peak_measured:
        click.echo("Note: peak memory is not measured on this OS (the CPU probe reads Linux's /proc/self/statm).")
    for reason in skipped.values():
        click.echo(f"Note: {reason}.")
    if load > cores:
        click.echo(
            f"Note: the load average ({load:.1f}) exceeds the {cores} cores, so other processes competed for the CPU "
            "while measuring; read the spread, raise --repeat, and try --threads 1."
        )
    if json_path is not None:
        write_json(
            json_path,
            {
                "policy": policy, "size": size, "targets_stated_for_size": TARGET_SIZE, "n": n, "width": width,
                "num_params": problem.num_params,
                "device": device, "threads": torch.get_num_threads(), "cores": cores, "load_average": load,
                "repeat": repeat, "warmup": warmup,
                "seed": seed, "jacobian_bytes": jac, "peak_measured": peak_measured, "rows": sp.rows_as_dicts(rows),
            },
        )
        click.echo(f"Wrote {json_path}")


def _training_report(env: str, solvers: tuple[str, ...], sets: tuple[str, ...], iterations: int,
                     threads: Optional[int], device: str, seed: int, json_path: Optional[Path]) -> None:
    """``ratbench speed --training ENV``: see :mod:`ratbench.training.speed_report`."""
    from ratbench.training.speed_report import as_dict, format_report, measure_training

    if len(solvers) > 1:
        raise RatbenchError("--training times one training setup; give at most one --solver")
    name = solvers[0] if solvers else "kaczmarz"
    algo, solver = (name, None) if name in ("ppo", "pg") else ("npg", name)
    overrides = [*sets, f"device={device}"] + ([f"threads={threads}"] if threads is not None else [])
    report = measure_training(env, solver=solver, algo=algo, sets=overrides, iterations=iterations, seed=seed)
    click.echo(format_report(report))
    if json_path is not None:
        write_json(json_path, as_dict(report))
        click.echo(f"Wrote {json_path}")

