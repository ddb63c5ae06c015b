"""The quick-start notebook runs as a user would run it: a real search through the
Python API in a Jupyter kernel, its DataFrame, the best trial and the report's figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "search_spaces" / "quickstart.ipynb"


@pytest.mark.e2e
def test_the_quickstart_notebook_runs_a_search_and_shows_its_results(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    nb = nbformat.read(notebook, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # Optuna's import of tqdm.auto warned in the first cell: "IProgress not found. Please
    # update jupyter and ipywidgets" (the supervisor draws no tqdm bar).
    stderr = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert "IProgress" not in stderr, stderr
    run_html = nb.cells[1].outputs[-1]["data"]["text/html"]
    assert "notebook-weather" in run_html and "4 of 4" in run_html
    frame = nb.cells[3].outputs[-1]["data"]["text/plain"]
    assert frame.count("COMPLETE") == 4, frame
    best = nb.cells[4].outputs[-1]["data"]["text/plain"]
    assert "learning_rate" in best and "filters1" in best
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 2
    assert (tmp_path / "reports" / "notebook-weather.html").is_file()
    assert (tmp_path / "runs" / "notebook-weather" / "space.yaml").is_file()
