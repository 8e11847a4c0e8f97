"""``ratbench accuracy``: score solvers against the dense float64 SciPy reference.

Every (problem, solver) pair is solved once; the table shows the relative
error, cosine, (F + lambda I)-norm error, the backward error of the solver's
route (s: sample space, p: parameter space), solver time, peak memory,
iterations, passes and the reference mode. ``--check`` exits 1 when a
solver misses its contract (:mod:`suites.accuracy.contracts`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import click
import torch

from ratbench.errors import RatbenchError, unknown_name
from ratbench.io import check_writable, write_csv, write_json
from ratbench.reporting.accuracy_figures import check_plot_path, plot_conditioning, plot_convergence
from ratbench.reference import DEFAULT_MAX_PARAMS, reference_mode
from ratbench.values import SEED
from solvers import SOLVERS, solver_names, solver_options
from suites.accuracy.contracts import CONTRACTS, describe_budget, describe_contract
from suites.accuracy.families import DEFAULT_DAMPING, FAMILIES, quick_set
from suites.accuracy.runner import SWEEP_DAMPINGS, ProblemInfo, run_suite, run_sweep, validate_options

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def parse_option(text: str) -> tuple[str, str, Any]:
    """'solver.key=value' -> (solver, key, value); value as int, float, bool, None or string."""
    head, sep, raw = text.partition("=")
    solver, dot, key = head.strip().partition(".")
    if not sep or not dot or not solver or not key.strip():
        raise RatbenchError(f"--option {text!r} is not SOLVER.KEY=VALUE (e.g. --option kaczmarz.block_size=64)")
    if solver not in SOLVERS:
        raise unknown_name("solver", solver, SOLVERS)
    return solver, key.strip(), _parse_value(raw.strip())


def _parse_value(raw: str) -> Any:
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(raw.lower(), raw)


def collect_options(texts: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for text in texts:
        solver, key, value = parse_option(text)
        options.setdefault(solver, {})[key] = value
    return options


def _check_names(kind: str, names: tuple[str, ...], valid: list[str]) -> list[str]:
    for name in names:
        if name not in valid:
            raise unknown_name(kind, name, valid)
    return list(dict.fromkeys(names))


def _device(name: str) -> str:
    if name == "cuda" and not torch.cuda.is_available():
        raise RatbenchError("--device cuda was given but torch sees no CUDA device; use --device cpu")
    return name


def _fmt(value: Optional[float], spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _align(header: tuple[str, ...], rows: list[tuple[str, ...]], numeric: set[int]) -> str:
    """Columns padded to width: numbers right-aligned, text left-aligned, a rule under the header."""
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = []
    for row in (header, *rows):
        cells = [str(c).rjust(w) if i in numeric else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(records: list[dict[str, Any]]) -> str:
    """The human-readable table: one row per (problem, solver)."""
    header = ("problem", "solver", "ref", "rel err", "cosine", "(F+λI) err", "backward err", "time s", "peak MB", "iters",
              "passes", "contract")
    rows = []
    for r in records:
        peak = None if r["peak_memory_bytes"] is None else r["peak_memory_bytes"] / 2**20
        rows.append((
            r["problem"], r["solver"], r["reference_mode"], _fmt(r["relative_error"], ".2e"), _fmt(r["cosine"], ".6f"),
            _fmt(r["damped_relative_error"], ".2e"), f"{_fmt(r['backward_error'], '.1e')} ({r['backward_space'][0]})",
            _fmt(r["seconds"], ".3f"), _fmt(peak, ".1f"), "-" if r["iterations"] is None else str(r["iterations"]),
            _fmt(r["passes"], ".1f"), _contract_cell(r),
        ))
    return _align(header, rows, numeric={3, 4, 5, 6, 7, 8, 9, 10})


def _contract_cell(r: dict[str, Any]) -> str:
    """'pass (η <= 2e-13; err <= 1e-9)', 'fail (...)' or 'report-only'; 'err unchecked' where the forward error
    is not checked."""
    if r["contract"] == "none":
        return "report-only"
    parts = [f"η <= {r['backward_tolerance']:.0e}"]
    # unchecked where kappa times the backward bound is not well below 1: no solve can promise an error there
    parts.append("err unchecked" if r["forward_tolerance"] is None else f"err <= {r['forward_tolerance']:.0e}")
    return f"{r['contract']} ({'; '.join(parts)})" + (" [error]" if r["error"] else "")


def _miss(r: dict[str, Any]) -> str:
    """Why a record failed its contract, in one line."""
    if r["error"]:
        return r["error"]
    if not r["backward_error"] <= r["backward_tolerance"]:
        return f"{r['backward_space']}-space backward error {r['backward_error']:.2e} > {r['backward_tolerance']:.0e}"
    return f"relative error {r['relative_error']:.2e} > {r['forward_tolerance']:.0e} (the bound its backward error implies)"


def format_problems(infos: list[ProblemInfo]) -> str:
    """One row per problem: sizes and how its float64 reference went."""
    header = ("problem", "N", "P", "reference", "κ(F+λI)", "ref residual", "ref s")
    rows = [
        (i.name, str(i.n), f"{i.num_params:,}", f"{i.reference_mode} space", _fmt(i.condition_number, ".3g"),
         _fmt(i.reference_residual, ".1e"), _fmt(i.reference_seconds, ".2f"))
        for i in infos
    ]
    return _align(header, rows, numeric={1, 2, 4, 5, 6})


def format_listing(max_params: int = DEFAULT_MAX_PARAMS) -> str:
    """Problems (with N, P and reference mode) and solvers (with options, defaults and the suite's budget)."""
    quick = set(quick_set())
    lines = ["problems (* = quick set, the default):"]
    rows = []
    for name, family in FAMILIES.items():
        p = family.num_params()
        exact = f"exact for {', '.join(family.exact_for)}; " if family.exact_for else ""
        rows.append((("* " if name in quick else "  ") + name, f"N={family.n}", f"P={p:,}",
                     f"{reference_mode(p, max_params)}-space reference", exact + family.description))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    lines.append("")
    lines.append("solvers (options and defaults; the suite's convergence budget in brackets):")
    for name in solver_names():
        defaults = ", ".join(f"{k}={v!r}" for k, v in solver_options(name).items()) or "no options"
        budget = describe_budget(name)
        budget_text = f" [suite: {budget}]" if budget else ""
        contract_text = describe_contract(name)
        lines.append(f"  {name:10s} {defaults}{budget_text}")
        lines.append(f"  {'':10s} exact: {SOLVERS[name].exact}; {contract_text}")
    return "\n".join(lines)


@click.command("accuracy")
@click.option("--solver", "solvers", multiple=True, metavar="NAME", help="Solver to score (repeatable; default: every registered solver).")
@click.option("--problem", "problems", multiple=True, metavar="NAME", help="Problem family (repeatable; default: the quick set). See --list.")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="float64", show_default=True, help="Working dtype of the problems and solvers.")
@click.option("--damping", type=float, default=DEFAULT_DAMPING, show_default=True, help="Tikhonov lambda > 0.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the problem families.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--option", "option_texts", multiple=True, metavar="SOLVER.KEY=VALUE", help="Solver option, e.g. kaczmarz.block_size=64 (repeatable; overrides the suite's budget).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the records (with convergence curves) as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write the records as CSV (no curves).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write convergence plots (.png, .svg or .pdf).")
@click.option("--list", "list_only", is_flag=True, help="List problems and solvers, then exit.")
@click.option("--check", is_flag=True, help="Exit 1 when a solver misses its tolerance contract.")
@click.option("--sweep", is_flag=True,
              help="Conditioning sweep: every damping from 1e-10 to 1e3 (one per decade), in float32 and float64 "
                   "unless --dtype is given; --plot draws forward and backward error against kappa.")
def accuracy(
    solvers: tuple[str, ...],
    problems: tuple[str, ...],
    dtype: str,
    damping: float,
    seed: int,
    device: str,
    option_texts: tuple[str, ...],
    json_path: Optional[str],
    csv_path: Optional[str],
    plot_path: Optional[str],
    list_only: bool,
    check: bool,
    sweep: bool,
) -> None:
    """Score solvers against a dense float64 SciPy reference on seeded problem families."""
    if list_only:
        click.echo(format_listing())
        return
    if sweep:
        ctx = click.get_current_context()
        if ctx.get_parameter_source("damping") is not click.core.ParameterSource.DEFAULT:
            raise RatbenchError("--sweep runs every damping from 1e-10 to 1e3 itself; drop --damping")
        explicit_dtype = ctx.get_parameter_source("dtype") is not click.core.ParameterSource.DEFAULT
        _sweep(solvers, problems, [DTYPES[dtype]] if explicit_dtype else list(DTYPES.values()), seed, device,
               option_texts, json_path, csv_path, plot_path, check)
        return
    if not (damping > 0 and math.isfinite(damping)):
        raise RatbenchError(f"--damping must be a positive finite number (Tikhonov lambda > 0), got {damping}")
    solver_list, problem_list, options, device = _checked_inputs(solvers, problems, option_texts, device,
                                                                 (json_path, csv_path, plot_path))
    infos, records = run_suite(
        problem_list, solver_list, dtype=DTYPES[dtype], device=device, damping=damping, seed=seed, options=options
    )
    click.echo(format_table(records))
    click.echo("")
    click.echo(format_problems(infos))
    click.echo(f"reference: float64 SciPy solve; dtype {dtype}, damping {damping}, seed {seed}")
    report = {
        "command": "ratbench accuracy",
        "dtype": dtype, "device": device, "damping": damping, "seed": seed,
        "problems": [asdict(info) for info in infos],
        "contracts": {name: asdict(contract) for name, contract in CONTRACTS.items()},
        "check": _check_summary(records, lambda r: f"{r['solver']} on {r['problem']}"),
        "records": records,
    }
    with _write_errors_as_sentences():
        _write_outputs(report, json_path, csv_path, plot_path)
    if check:
        _exit_on_misses(records, lambda r: f"{r['solver']} on {r['problem']}")


def _checked_inputs(solvers: tuple[str, ...], problems: tuple[str, ...], option_texts: tuple[str, ...], device: str,
                    paths: tuple[Optional[str], ...]) -> tuple[list[str], list[str], dict[str, dict[str, Any]], str]:
    """(solvers, problems, options, device) checked, and the output paths (json, csv, plot) tried, before any work."""
    solver_list = _check_names("solver", solvers, solver_names()) if solvers else solver_names()
    problem_list = _check_names("problem", problems, list(FAMILIES)) if problems else quick_set()
    options = collect_options(option_texts)
    validate_options(options)
    device = _device(device)
    given = [Path(path).resolve() for path in paths if path]
    if len(set(given)) < len(given):
        raise RatbenchError("--json, --csv and --plot name the same file; give each output its own path")
    for path in paths:
        if path:
            check_writable(path, "the output")
    if paths[2]:
        check_plot_path(paths[2])
    return solver_list, problem_list, options, device


def _check_summary(records: list[dict[str, Any]], name: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """The JSON's ``check``: pairs with a contract, the ones that failed (named by ``name``), and the verdict."""
    failed = [name(r) for r in records if r["contract"] == "fail"]
    return {"checked": sum(r["contract"] != "none" for r in records), "failed": failed, "passed": not failed}


def _exit_on_misses(records: list[dict[str, Any]], name: Callable[[dict[str, Any]], str]) -> None:
    """--check: how many contracts were met, one line per miss on stderr, exit 1 on any."""
    summary = _check_summary(records, name)
    click.echo(f"contracts: {summary['checked'] - len(summary['failed'])} of {summary['checked']} met")
    for r in records:
        if r["contract"] == "fail":
            click.echo(f"contract missed: {name(r)}: {_miss(r)}", err=True)
    if summary["failed"]:
        click.get_current_context().exit(1)


@contextlib.contextmanager
def _write_errors_as_sentences() -> Iterator[None]:
    try:
        yield
    except OSError as err:
        raise RatbenchError(f"could not write {err.filename or 'an output file'}: {err.strerror}; choose another output path") from None


def _write_outputs(report: dict[str, Any], json_path: Optional[str], csv_path: Optional[str], plot_path: Optional[str]) -> None:
    """JSON (the whole report, curves included), CSV (records without curves) and the plot, each atomic."""
    records = report["records"]
    if json_path:
        write_json(json_path, report)
    if csv_path:
        rows = [{k: v for k, v in r.items() if k != "curve"} for r in records]
        for row in rows:
            row["options"] = ";".join(f"{k}={v}" for k, v in row["options"].items())
        write_csv(csv_path, rows)
    if plot_path:
        title = f"Convergence to the float64 reference ({report['dtype']}, λ={report['damping']}, seed {report['seed']})"
        plot_convergence(records, plot_path, title=title)


def format_sweep(records: list[dict[str, Any]]) -> str:
    """One row per (problem, solver, dtype, damping) of the conditioning sweep."""
    header = ("problem", "solver", "dtype", "damping", "κ(F+λI)", "rel err", "backward err", "contract")
    rows = [(r["problem"], r["solver"], r["dtype"], f"{r['damping']:.0e}", _fmt(r["condition_number"], ".2e"),
             _fmt(r["relative_error"], ".2e"), f"{_fmt(r['backward_error'], '.1e')} ({r['backward_space'][0]})",
             _contract_cell(r)) for r in records]
    return _align(header, rows, numeric={3, 4, 5, 6})


def _sweep(solvers: tuple[str, ...], problems: tuple[str, ...], dtypes: list[torch.dtype], seed: int, device: str,
           option_texts: tuple[str, ...], json_path: Optional[str], csv_path: Optional[str],
           plot_path: Optional[str], check: bool) -> None:
    """``ratbench accuracy --sweep``: :func:`suites.accuracy.runner.run_sweep`, its table, files and verdicts."""
    solver_list, problem_list, options, device = _checked_inputs(solvers, problems, option_texts, device,
                                                                 (json_path, csv_path, plot_path))
    records = run_sweep(problem_list, solver_list, dtypes, device=device, seed=seed, options=options)
    click.echo(format_sweep(records))
    name = lambda r: f"{r['solver']} on {r['problem']} ({r['dtype']}, damping {r['damping']:.0e})"  # noqa: E731
    report = {"command": "ratbench accuracy --sweep", "dtypes": [str(d).removeprefix("torch.") for d in dtypes],
              "dampings": list(SWEEP_DAMPINGS), "device": device, "seed": seed,
              "check": _check_summary(records, name), "records": records}
    with _write_errors_as_sentences():
        _write_outputs(report, json_path, csv_path, None)
        if plot_path:
            plot_conditioning(records, plot_path, title=f"Forward and backward error against κ (seed {seed})")
    if check:
        _exit_on_misses(records, name)
