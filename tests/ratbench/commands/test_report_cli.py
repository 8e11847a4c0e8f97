"""`ratbench report` end to end on run directories in the trainer's format."""

from click.testing import CliRunner

from ratbench.cli import cli
from tests.ratbench.reporting.helpers import write_run

STEPS = [250_000, 500_000, 750_000, 1_000_000]


def _runs(root):
    for seed in range(3):
        write_run(root, f"rat-s{seed}", STEPS, [100, 400, 900, 1500 + seed], seed=seed, evals={1_000_000: 1600 + seed})
        write_run(root, f"ppo-s{seed}", STEPS, [100, 300, 500, 700 + seed], seed=seed, evals={1_000_000: 800 + seed},
                  algo="ppo", solver=None)
    write_run(root, "rat-s3", STEPS[:2], [100, 200], seed=3, budget=1_000_000)


def test_report_writes_every_file_and_states_the_verdict(tmp_path):
    _runs(tmp_path / "runs")
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "runs"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("README.md", "report.html", "curves.png", "milestones.csv", "final.csv", "summary.json"):
        assert (out / name).stat().st_size > 0
    page = (out / "README.md").read_text()
    assert "RAT leads (IQM 1,501, 3 seeds) over PPO (701, 3 seeds)" in page
    assert "P(lead > it) = 1.00" in page
    assert "Unfinished runs" in page and "rat-s3" in page  # listed, not averaged in
    assert "1,500 / 1,501 / 1,502 (3)" in page  # train_return at 1M: min / median / max (seeds)
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_report_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "does not exist" in result.output and "Traceback" not in result.output
    (tmp_path / "runs").mkdir()
    write_run(tmp_path / "runs", "a", STEPS, [1, 2, 3, 4], seed=0)
    write_run(tmp_path / "runs", "b", STEPS, [1, 2, 3, 4], seed=0)
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "--keep-latest" in result.output
    assert not (tmp_path / "o").exists()


def test_collect_copies_compact_outputs_and_reports_from_them(tmp_path):
    import json

    _runs(tmp_path / "runs")
    (tmp_path / "runs" / "rat-s0" / "checkpoint.pt").write_bytes(b"not copied")
    results = tmp_path / "results"
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "runs"), "--collect", str(results)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (results / "rat-s0").iterdir()) == ["config.yaml", "progress.csv", "summary.json"]
    summary = json.loads((results / "rat-s3" / "summary.json").read_text())
    assert summary["finished"] is False and summary["env_steps"] == 500_000 and summary["method"] == "RAT"
    assert "seed 0: `rat-s0`" in (results / "README.md").read_text()  # paths relative to the page
