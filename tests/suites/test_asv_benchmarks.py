"""Every asv benchmark in suites/speed and suites/history runs: setup and body once at the smallest size.

Benchmarks are found the way asv finds them (public module attributes;
classes' methods and module functions named time_/peakmem_/track_/mem_/timeraw_),
so a new benchmark is covered without touching this file. Numeric parameters
take their smallest value, every other parameter (device, method, policy,
solver) every value. Only CUDA cases may skip, and only without a GPU: a
benchmark that skips on the CPU fails here, so the suite cannot rot quietly.
No timing is asserted.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import math
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import suites.history
import suites.speed
from suites.speed import common

REPO = Path(__file__).resolve().parents[2]
PREFIXES = ("time_", "peakmem_", "track_", "mem_", "timeraw_")


def _benchmark_modules():
    """The speed suite's modules and the history's (suites/history, asv.history.conf.json)."""
    return [importlib.import_module(f"{package.__name__}.{m.name}") for package in (suites.speed, suites.history)
            for m in pkgutil.iter_modules(package.__path__)]


def _discover():
    """(id, class or None, function name, params dict) for every benchmark and parameter case."""
    cases = []
    for module in _benchmark_modules():
        for attr, obj in vars(module).items():
            if attr.startswith("_"):
                continue
            if inspect.isclass(obj):
                names = [n for n, _ in inspect.getmembers(obj) if n.startswith(PREFIXES)]
                owner = obj
            elif inspect.isfunction(obj) and attr.startswith(PREFIXES):
                names, owner = [attr], None
            else:
                continue
            for name in names:
                func = getattr(owner, name) if owner else obj
                params = getattr(func, "params", getattr(owner, "params", [])) if owner else getattr(obj, "params", [])
                params_names = getattr(owner, "param_names", None) or [f"p{i}" for i in range(len(params))]
                choices = [[min(values)] if all(isinstance(v, (int, float)) for v in values) else list(values) for values in params]
                for combo in itertools.product(*choices) if params else [()]:
                    label = f"{module.__name__.split('.')[-1]}.{attr}.{name}" + (f"[{'-'.join(map(str, combo))}]" if combo else "")
                    cases.append(pytest.param(owner, name, dict(zip(params_names, combo)), obj, id=label))
    return cases


CASES = _discover()


def test_discovery_finds_the_suite():
    names = {case.id.split("[")[0] for case in CASES}
    assert {
        "bench_direction.Direction.time_direction",
        "bench_direction.DirectionMemory.peakmem_direction",
        "bench_policies.PolicyDirection.time_direction",
        "bench_accuracy.IterativeAccuracy.track_relative_error",
        "bench_training.TrainingIteration.time_iteration",
    } <= names


_CACHES: dict = {}


def _setup_cache(owner, monkeypatch):
    """asv's setup_cache, run once per class (in light mode: its smallest size) and passed to every body."""
    if owner not in _CACHES:
        monkeypatch.setenv(common.LIGHT_ENV, "1")
        _CACHES[owner] = owner().setup_cache()
        monkeypatch.delenv(common.LIGHT_ENV, raising=False)
    return _CACHES[owner]


@pytest.mark.parametrize("owner, name, params, obj", CASES)
def test_benchmark_runs_once(owner, name, params, obj, monkeypatch):
    monkeypatch.delenv(common.LIGHT_ENV, raising=False)
    args = list(params.values())
    if owner is not None and hasattr(owner, "setup_cache"):
        args = [_setup_cache(owner, monkeypatch), *args]
    cuda_case = params.get("device") == "cuda" or "cuda" in name
    instance = owner() if owner else None
    try:
        try:
            if hasattr(instance, "setup"):
                instance.setup(*args)
        except NotImplementedError as skip:  # asv's skip
            if cuda_case and not torch.cuda.is_available():
                pytest.skip(str(skip))
            raise AssertionError(f"benchmark skipped on a machine that can run it: {skip}") from None
        value = getattr(instance, name)(*args) if instance else obj(*args)
        if name.startswith("track_"):
            assert isinstance(value, (int, float)) and math.isfinite(value)
    finally:
        if hasattr(instance, "teardown"):  # asv tears down after a skipped setup too
            instance.teardown(*args)


def test_light_mode_skips_heavy_sizes_only(monkeypatch):
    from suites.speed.bench_direction import Direction

    monkeypatch.setenv(common.LIGHT_ENV, "1")
    with pytest.raises(NotImplementedError, match=common.LIGHT_ENV):
        Direction().setup("cpu", 4096, 1024, "woodbury")
    with pytest.raises(NotImplementedError, match=common.LIGHT_ENV):
        Direction().setup("cpu", 1024, 64, "woodbury")
    Direction().setup("cpu", 256, 256, "woodbury")
    monkeypatch.setenv(common.LIGHT_ENV, "0")
    Direction().setup("cpu", 4096, 1024, "woodbury")


def test_light_mode_training_runs_kaczmarz_only(monkeypatch):
    from suites.speed.bench_training import TrainingIteration

    monkeypatch.setenv(common.LIGHT_ENV, "1")
    bench = TrainingIteration()
    with pytest.raises(NotImplementedError, match=common.LIGHT_ENV):
        bench.setup("woodbury")
    bench.teardown("woodbury")  # asv tears down after a skipped setup


def test_per_sample_route_is_skipped_where_it_would_not_fit(monkeypatch):
    from suites.speed.bench_direction import Direction

    monkeypatch.delenv(common.LIGHT_ENV, raising=False)
    with pytest.raises(NotImplementedError, match="per-sample route skipped"):
        Direction().setup("cpu", 4096, 1024, "per-sample")


def _jsonc(path: Path) -> dict:
    """asv.conf.json allows // comments on their own lines."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("//"))
    return json.loads(text)


def test_asv_config():
    conf = _jsonc(REPO / "asv.conf.json")
    assert conf["benchmark_dir"] == "suites/speed"
    assert conf["environment_type"] == "virtualenv"
    for key in ("results_dir", "html_dir", "env_dir"):
        assert conf[key].startswith(".asv/")
    assert conf["matrix"]["req"]["torch"] == ["2.13.0"]
    # torch is pinned and installed before the project's wheel.
    install = conf["install_command"]
    assert "torch==2.13.0" in install[0] and all("{wheel_file}" in cmd for cmd in install[1:])
    assert not any(re.search(r"torch(?!==2\.13\.0)", cmd) for cmd in install)
    # asv's own loader accepts the file.
    from asv.config import Config

    loaded = Config.load(str(REPO / "asv.conf.json"))
    assert loaded.benchmark_dir.endswith("suites/speed")
