"""The committed results page (results/README.md) is what `ratbench report results` makes of the committed runs.

Regenerated from a copy of results/ (so nothing in the repository is rewritten) and compared as text: a code
change that moves a published number, or a run added without regenerating the page, fails here. The PNG
figures are not compared (their bytes depend on the matplotlib build).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from ratbench.cli import cli

RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_the_results_page_regenerates_identically(tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy)
    result = CliRunner().invoke(cli, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    committed = (RESULTS / "README.md").read_text().replace("`ratbench report results`", "`ratbench report RESULTS`")
    regenerated = (copy / "README.md").read_text().replace(f"`ratbench report {copy}`", "`ratbench report RESULTS`")
    assert regenerated == committed
    for table in ("final.csv", "milestones.csv"):
        assert (copy / table).read_text() == (RESULTS / table).read_text()
