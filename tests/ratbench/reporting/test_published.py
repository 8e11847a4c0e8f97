"""Published numbers (ratbench/reporting/published.yaml): well-formed, on tasks ratbench has, shown only beside
ratbench's own groups of the same task and labelled as published, with the spread and seeds their source prints."""

from envs.names import DMC_TASKS, ENV_IDS, dmc_env_id
from ratbench.reporting.published import load_published
from ratbench.reporting.methods import Group
from ratbench.reporting.tables import milestone_rows


def test_every_entry_names_a_metric_a_source_and_a_task_family_ratbench_has():
    ids = set(ENV_IDS.values())
    for entry in load_published():
        assert entry.metric in ("train_return", "eval_return") and entry.source and entry.points
        assert any(entry.same_task(env) for env in ids), entry.env
        assert set(entry.spread) <= set(entry.points)


def test_the_pixel_dmc_tables_cover_the_planet_benchmark_at_500k_environment_steps():
    dmc = [e for e in load_published() if e.env.startswith("DMC/")]
    by_method: dict[str, set[str]] = {}
    for entry in dmc:
        assert list(entry.points) == [500_000] and list(entry.spread) == [500_000]
        assert 0 <= entry.points[500_000] <= 1000  # returns of 1,000 control steps of rewards in [0, 1]
        by_method.setdefault(entry.method, set()).add(entry.env)
    planet = {dmc_env_id(domain, task) for domain, task, _ in DMC_TASKS}
    assert set(by_method) >= {"CURL (published)", "DrQ (published)", "SAC+AE (published)"}
    assert all(envs == planet for envs in by_method.values())
    curl = next(e for e in dmc if e.method == "CURL (published)" and e.env == "DMC/cheetah-run-v0")
    assert (curl.points[500_000], curl.spread[500_000], curl.seeds) == (518, 28, 10)  # CURL's Table 1, as printed


def test_published_rows_join_only_tasks_on_the_page_and_print_their_spread():
    published = load_published()
    assert milestone_rows([], ["eval_return"], [500_000], published) == []
    group = Group(env="DMC/cheetah-run-v0", method="RAT", runs=[])
    rows = [r for r in milestone_rows([group], ["eval_return"], [500_000], published) if r["source"] != "ratbench"]
    assert rows and all(r["env"] == "DMC/cheetah-run-v0" for r in rows)
    curl = next(r for r in rows if r["method"].startswith("CURL"))
    assert curl["method"] == "CURL (published) [published, DMC/cheetah-run-v0, +-28]" and curl["seeds"] == 10
    assert curl["median"] == 518 and "CURL, ICML 2020" in curl["source"]
