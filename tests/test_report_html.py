"""Reports: report.html (self-contained, opened in headless Chromium), report.png's layout, line styles, TensorBoard."""

import base64
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lifelong.cli import main  # noqa: E402
from lifelong.plotting import line_styles  # noqa: E402
from lifelong.report import (_figure, draw_curves, draw_forgetting, load_results, report_figure,  # noqa: E402
                             task_forgetting)

REPO = Path(__file__).resolve().parents[1]


def fake_run(method, setting="class", seed=0, matrix=None, n_tasks=5):
    """A results document as `lifelong run` writes it, with an accuracy matrix of our choosing."""
    matrix = matrix or [[0.9 - 0.1 * (i - j) - 0.01 * seed if j <= i else None for j in range(n_tasks)]
                        for i in range(n_tasks)]
    average = [sum(row[:i + 1]) / (i + 1) for i, row in enumerate(matrix)]
    return {"method": method, "setting": setting, "scenario": "split-digits", "seed": seed,
            "accuracy_matrix": matrix, "average_accuracy": average, "final_average_accuracy": average[-1],
            "final_forgetting": 0.1, "backward_transfer": -0.1, "wall_time_s": 1.0,
            "task_classes": [[2 * t, 2 * t + 1] for t in range(n_tasks)],
            "config": {"epochs": 1, "lr": 0.001, "seed": seed, "extra": {"backbone": "mlp"}}}


def test_thirty_runs_get_thirty_distinct_colours_and_styles():
    styles = line_styles(30)
    assert len({(tuple(s["color"]), s["linestyle"]) for s in styles}) == 30
    assert len({tuple(s["color"]) for s in styles}) == 30  # no colour repeats within 30 runs
    assert all(a["linestyle"] != b["linestyle"] for a, b in zip(styles, styles[1:]))  # neighbours differ twice
    many = line_styles(90)  # past the 30 colours, the pair still differs (30 colours x 3 styles)
    assert len({(tuple(s["color"]), s["linestyle"]) for s in many}) == 90


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_png_report_legend_outside_titles_apart_colour_bar_tasks_from_one():
    """12 methods (two in two settings): every line its own colour and style, the legend beside the panels (never
    over one), no title over another or over a panel, a colour bar, heat-map tasks numbered 1..5 as the curves."""
    methods = [f"method-{i}" for i in range(12)]
    results = [fake_run(m, "class") for m in methods] + [fake_run(m, "task") for m in methods[:2]]
    fig = report_figure(results)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"]
    curves = panels[0]
    pairs = {(line.get_color(), line.get_linestyle()) for line in curves.get_lines()}
    assert len(curves.get_lines()) == 12 and len(pairs) == 12
    legends = [legend for sub in fig.subfigs for legend in sub.legends]
    assert legends and not any(ax.get_legend() for ax in panels)  # figure legends, not in a panel
    for legend in legends:
        for ax in panels:
            assert not _overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
    titles = [ax.title for ax in panels] + [sub._suptitle for sub in fig.subfigs] + [fig._suptitle]
    boxes = [t.get_window_extent(renderer) for t in titles if t is not None and t.get_text()]
    for legend in legends:
        assert not any(_overlap(legend.get_window_extent(renderer), box) for box in boxes)
    for i, a in enumerate(boxes):
        assert not any(_overlap(a, b) for b in boxes[i + 1:])
        assert not any(_overlap(a, ax.get_window_extent(renderer)) for ax in panels if ax.title.get_text())
    colour_bars = [ax for ax in fig.get_axes() if ax.get_label() == "<colorbar>"]
    assert len(colour_bars) == 1 and colour_bars[0].get_ylabel() == "accuracy (%)"
    heat_map = next(ax for ax in panels if ax.images)
    assert [t.get_text() for t in heat_map.get_xticklabels()] == ["1", "2", "3", "4", "5"]
    assert [t.get_text() for t in heat_map.get_yticklabels()] == ["1", "2", "3", "4", "5"]
    plt.close(fig)


@pytest.mark.parametrize("settings", [("class",), ("class", "task", "domain")])
def test_html_figures_keep_their_legend_off_titles_and_panels(settings):
    """The page's figures are narrower than report.png (a panel per setting): the legend still meets no title."""
    results = [fake_run(f"method-{i}", setting, seed) for setting in settings for i in range(2) for seed in (0, 1)]
    for draw in (draw_curves, draw_forgetting):
        fig = _figure(draw, results)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        boxes = [fig._suptitle.get_window_extent(renderer)] + [
            box for ax in fig.get_axes() for box in (ax.get_window_extent(renderer), ax.title.get_window_extent(renderer))]
        assert not any(_overlap(legend.get_window_extent(renderer), box) for box in boxes)
        plt.close(fig)


def test_curves_of_seeds_are_a_mean_line_and_a_min_max_band_against_classes_seen():
    runs = [fake_run("lwf", seed=seed) for seed in (0, 1, 2)]
    fig = plt.figure(layout="constrained")
    draw_curves(fig, runs)
    ax = fig.get_axes()[0]
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [2, 4, 6, 8, 10] and ax.get_xlabel() == "classes seen"
    curves = [[100 * a for a in r["average_accuracy"]] for r in runs]
    assert line.get_ydata() == pytest.approx([sum(c) / 3 for c in zip(*curves)])
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(min(map(min, curves)))
    assert band[:, 1].max() == pytest.approx(max(map(max, curves)))
    assert "lwf (n=3)" in [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)


def test_runs_of_one_scenario_cut_into_other_task_counts_are_two_rows_not_one_mean():
    five, two = fake_run("finetune", n_tasks=5), fake_run("finetune", n_tasks=2)
    five["scenario_config"], two["scenario_config"] = {"n_tasks": 5, "seed": 0}, {"n_tasks": 2, "seed": 0}
    fig = report_figure([five, two])  # averaging a 5x5 with a 2x2 matrix crashed the heat maps
    titles = [ax.get_title() for ax in fig.get_axes()]
    assert any("scenario n_tasks=5" in t for t in titles) and any("scenario n_tasks=2" in t for t in titles)
    plt.close(fig)


def test_forgetting_of_each_task_is_its_best_earlier_accuracy_minus_its_last():
    R = [[0.7, None, None], [0.9, 0.8, None], [0.6, 0.4, 0.95]]  # task 1 best after task 2 (backward transfer)
    assert task_forgetting(R) == pytest.approx([0.9 - 0.6, 0.8 - 0.4])
    partial = [[0.9, None, None], [0.5, 0.8, None], [None, None, None]]  # a run still running: tasks done only
    assert task_forgetting(partial) == pytest.approx([0.9 - 0.5])


# Real runs: split-digits, 1 epoch, 2 methods, 2 seeds, class-incremental (a few seconds on one CPU thread)
@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", "--method", "finetune,lwf", "--setting", "class", "--epochs", "1", "--seeds", "2",
                     "--quiet", "--out", str(out)]) == 0
    return out, stderr.getvalue()


def test_run_ends_with_its_report_written_and_its_path(real_runs):
    out, stderr = real_runs
    assert f"report: {out / 'report.html'}" in stderr.splitlines()[-1]
    page = (out / "report.html").read_text()
    assert page.count("<img") == 3 and "lwf (n=2)" not in page  # the legends are inside the images


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', page)]


def test_html_report_is_self_contained_with_every_figure_and_configuration(real_runs, tmp_path, capsys):
    out, _ = real_runs
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert f"report: {tmp_path / 'report' / 'report.html'}" in capsys.readouterr().out
    page = (tmp_path / "report" / "report.html").read_text()
    images = _images(page)
    assert page.count("<img") == len(images) == 3  # curves, forgetting, heat maps; each an embedded PNG
    assert all(image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 5000 for image in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched: no file, no network, no CDN
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "min..max over seeds" in page
    results = load_results(out)
    table = page[page.index("Configuration of every run"):]
    assert table.count("<tr>") == 1 + len(results) == 5  # the header and a row per run
    assert "<code>epochs</code> 1" in table  # what every run shares, said once
    assert (tmp_path / "report" / "report.png").stat().st_size > 20_000


def _chromium(*args, profile):
    """Headless Chromium (as root it needs --no-sandbox); its log on the standard error."""
    command = [shutil.which("chromium") or shutil.which("chromium-browser"), "--headless", "--no-sandbox",
               "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr",
               "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


# The one line a page's console message makes in Chromium's log: [..:INFO:CONSOLE:29] "message", source: ...
CONSOLE = re.compile(r":CONSOLE[:(]")


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="chromium is not installed (apt-get install chromium; .ci/run installs it)")
def test_html_report_opens_in_chromium_without_errors_and_every_image_shows(real_runs, tmp_path):
    """The page loads offline with no console message, every <img> decodes (naturalWidth > 0), and a screenshot
    is kept: in the test's folder and at $LIFELONG_REPORT_SCREENSHOT (default test-artifacts/report.png)."""
    out, _ = real_runs
    page = out / "report.html"
    # a copy with a probe that writes each image's state into the DOM on load (the report itself has no script)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", "<script>window.addEventListener('load', () => "
                                              "document.body.setAttribute('data-widths', [...document.images]"
                                              ".map(i => i.complete ? i.naturalWidth : -1).join(' ')));"
                                              "</script></body>"))
    dom = _chromium("--dump-dom", probe.as_uri(), profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    widths = [int(w) for w in re.search(r'data-widths="([^"]*)"', dom.stdout)[1].split()]
    assert len(widths) == 3 and all(w > 0 for w in widths), widths
    assert not [line for line in dom.stderr.splitlines() if CONSOLE.search(line)]

    screenshot = tmp_path / "report.png"
    shot = _chromium(f"--screenshot={screenshot}", "--window-size=1300,2600", page.as_uri(),
                     profile=tmp_path / "profile")
    assert shot.returncode == 0 and screenshot.stat().st_size > 50_000, shot.stderr[-2000:]
    assert not [line for line in shot.stderr.splitlines() if CONSOLE.search(line)]
    kept = Path(os.environ.get("LIFELONG_REPORT_SCREENSHOT", REPO / "test-artifacts" / "report.png"))
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, kept)


def test_report_of_a_reproduction_folder_shows_the_papers_numbers_beside_ours(real_runs, tmp_path, capsys):
    """`lifelong reproduce` writes its table (the paper's numbers beside ours) into its --out: a report of that
    folder, alone or with runs, carries the table."""
    reproduction = tmp_path / "hsu"
    reproduction.mkdir()
    shutil.copy(REPO / "benchmarks" / "results" / "hsu2018_split_mnist.md", reproduction)
    assert main(["report", str(reproduction), "--out", str(tmp_path / "alone")]) == 0
    assert "93.46 +- 2.01" in capsys.readouterr().out
    page = (tmp_path / "alone" / "report.html").read_text()
    assert re.search(r"<th>task-IL paper</th>.*<td>93\.46 \+- 2\.01</td>", page, re.S)
    out, _ = real_runs
    assert main(["report", str(out), str(reproduction), "--out", str(tmp_path / "both")]) == 0
    page = (tmp_path / "both" / "report.html").read_text()
    assert "<td>93.46 +- 2.01</td>" in page and page.count("<img") == 3


def _scalars(folder, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_tensorboard_gets_the_loss_of_each_epoch_and_the_accuracy_of_each_task(tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed "
                                              "(pip install 'lifelong[tensorboard]')")
    assert main(["run", "--method", "finetune", "--setting", "class", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [len(losses) for losses in results["epoch_loss"]] == [2] * 5
    board = tmp_path / "tb" / "class-finetune"
    losses = [loss for task in results["epoch_loss"] for loss in task]
    assert _scalars(board, "loss/train") == [(e + 1, pytest.approx(v)) for e, v in enumerate(losses)]
    assert _scalars(board, "accuracy/average") == [(k + 1, pytest.approx(a))
                                                   for k, a in enumerate(results["average_accuracy"])]
    assert _scalars(board, "accuracy/task_1") == [(k + 1, pytest.approx(row[0]))
                                                  for k, row in enumerate(results["accuracy_matrix"])]


def test_tensorboard_flag_without_the_package_is_one_line_before_any_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard now raises ImportError
    code = main(["run", "--method", "finetune", "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--tensorboard", str(tmp_path / "tb")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        "lifelong: error: --tensorboard needs the tensorboard package: pip install 'lifelong[tensorboard]'"]
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


def test_the_core_never_imports_tensorboard():
    code = ("import sys; import lifelong, lifelong.cli, lifelong.loggers, lifelong.report, lifelong.engine, "
            "lifelong.experiment; from lifelong.cli import build_parser; build_parser(); "
            "print([m for m in sys.modules if 'tensorboard' in m])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
