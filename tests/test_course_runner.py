"""The notebook runner: a status line per notebook, no kernel log noise, runtimes against the budget;
and the multi-seed sweep bookkeeping (resume, summary, spread)."""
import io
import json

import nbformat
import pytest

from fgh_tutorial.course import runner, sweeps


def test_execute_notebook_reports_progress_and_no_kernel_log(tmp_path, capfd):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("text"),
                                         nbformat.v4.new_code_cell("print(x + 1)")])
    path = tmp_path / "00_tiny.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "out"
    out.mkdir()
    stream = io.StringIO()
    seconds = runner.execute_notebook(path, out, html=False, progress=stream)
    assert seconds > 0
    assert stream.getvalue().startswith("00_tiny  cell 2/2")  # code cells only; one final line off a terminal
    done = nbformat.read(out / "00_tiny.ipynb", as_version=4)
    assert done.cells[2].outputs[0]["text"] == "2\n"
    assert "WARNING" not in capfd.readouterr().err  # the kernel's transport warning stays out


def test_progress_bars_are_stored_as_their_final_line(tmp_path):
    cell = "from tqdm.auto import tqdm\nfor _ in tqdm(range(4), desc='steps'):\n    pass\nprint('done')"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), tmp_path / "00_bar.ipynb")
    runner.execute_notebook(tmp_path / "00_bar.ipynb", tmp_path, html=False)
    outputs = nbformat.read(tmp_path / "00_bar.ipynb", as_version=4).cells[0].outputs
    bars = [o for o in outputs if o.output_type == "display_data"]
    assert len(bars) == 1 and set(bars[0]["data"]) == {"text/plain"}  # no widget view left to render as 0%
    text = bars[0]["data"]["text/plain"]
    assert text.startswith("steps: 4/4 [") and "%|" not in text  # the final line, no bar


def test_readme_runtimes_come_from_the_run(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("| notebook | idea | CPU |\n|---|---|---|\n| [01 a](notebooks/01_a.ipynb) | x | ~9 min |\n"
                      "| [02 b](notebooks/02_b.ipynb) | y | ~1 s |\ntext\n")
    assert runner.update_readme_runtimes(readme, {"01_a": 42.4, "02_b": 150.0, "03_c": 1.0}) == 2
    assert readme.read_text() == ("| notebook | idea | CPU |\n|---|---|---|\n| [01 a](notebooks/01_a.ipynb) | x | 42 s |\n"
                                  "| [02 b](notebooks/02_b.ipynb) | y | 2.5 min |\ntext\n")


def test_notebook_runtime_comes_from_the_run(tmp_path):
    path = tmp_path / "01_a.ipynb"
    opening = "# 01\n\n**Runtime:** RUNTIME_01 on a 2-core CPU (cached); GPU: not measured."
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(opening)]), path)
    assert runner.update_notebook_runtime(path, 95.0)
    assert nbformat.read(path, as_version=4).cells[0].source.endswith("**Runtime:** 1.6 min on a 2-core CPU (cached); GPU: not measured.")
    assert runner.update_notebook_runtime(path, 42.0)  # a measured value is replaced by the next one
    assert "**Runtime:** 42 s on a 2-core CPU" in nbformat.read(path, as_version=4).cells[0].source


def test_format_budget():
    text = runner.format_budget({"01_a": {"seconds": 100.0}, "05_b": {"seconds": 150.0}}, budget_s=120)
    assert "01_a" in text and "within budget" in text and "OVER budget" in text and "250 s" in text


def test_sweep_resumes_and_summarises(tmp_path):
    calls = []

    def experiment(setting, seed):
        calls.append((setting["x"], seed))
        return {"map": setting["x"] + 0.01 * seed, "nested": {"v": seed}}

    path = tmp_path / "toy.json"
    sweeps.run_sweep(path, experiment, [{"x": 0.1}, {"x": 0.5}], seeds=(0, 1), budget_s=0.0, log=lambda m: None)
    assert len(calls) == 1  # the budget stops it after the first run; the file keeps that run
    data = sweeps.run_sweep(path, experiment, [{"x": 0.1}, {"x": 0.5}], seeds=(0, 1), log=lambda m: None)
    assert len(calls) == 4 and len(json.loads(path.read_text())["runs"]) == 4
    low, high = sweeps.summary(data, "map")
    assert low["values"] == [0.1, 0.11] and low["min"] == 0.1 and high["max"] == pytest.approx(0.51)
    assert sweeps.separated(low, high) and "beyond the spread" in sweeps.compare(high, low)
    assert sweeps.summary(data, "nested.v", where={"x": 0.5})[0]["values"] == [0, 1]
    same = dict(low, min=0.0, max=1.0)
    assert not sweeps.separated(same, high) and "within the spread" in sweeps.compare(high, same)


def test_load_sweep_names_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmarks/sweeps.py"):
        sweeps.load_sweep(tmp_path / "missing.json")
