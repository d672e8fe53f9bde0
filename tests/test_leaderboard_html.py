"""leaderboard.html: one self-contained page built from the same table as the CSV; tested statically and in
headless Chromium (sorting, the view toggle, no console errors, a screenshot kept under tmp_path)."""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
from html import escape
from pathlib import Path

import pandas as pd
import pytest

from harness_ext import leaderboard
from harness_ext.leaderboard import build_leaderboard
from harness_ext.leaderboard.columns import columns_for, doc_row
from harness_ext.leaderboard.runs import load_run, run_metadata
from harness_ext.leaderboard.screenshot import screenshot
from tests.conftest import SHARED, requires
from tests.test_leaderboard import FORGET, MODELS, UTILITY, scores, write_run

ANCHOR = SHARED / "anchors" / "open-unlearning-smollm2-forget01"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


@pytest.fixture
def page(tmp_path) -> Path:
    for name in MODELS:
        write_run(tmp_path, name)
    build_leaderboard([tmp_path / "runs"], str(tmp_path / "checkpoints" / "target"), "retain", tmp_path / "out",
                      html=True)
    return tmp_path / "out" / "leaderboard.html"


def headers(text: str) -> list[str]:
    return re.findall(r'<th data-index="\d+" data-name="([^"]*)"', text)


def title(text: str, column: str) -> str:
    return re.search(rf'data-name="{re.escape(column)}"[^>]*title="([^"]*)"', text).group(1)


def docs_cell(key: str) -> str:
    """The second cell of docs/metrics.md's first table row whose first cell is exactly `key`, without backticks."""
    line = next(line for line in DOCS.read_text().splitlines() if line.startswith(f"| `{key}` |"))
    return line.split(" | ")[1].replace("`", "")


def row_cells(text: str, model: str) -> dict[str, str]:
    """column name → the <td ...> opening tag of the model's row."""
    row = next(line for line in text.splitlines() if line.startswith('<tr class="run') and f">{model}</td>" in line)
    return dict(zip(headers(text), re.findall(r"<td[^>]*>", row)))


def test_page_has_the_csv_rows_and_columns(page):
    text = page.read_text()
    csv = pd.read_csv(page.parent / "leaderboard.csv")
    assert [name.replace("&#x27;", "'") for name in headers(text)] == list(csv.columns)
    assert text.count('<tr class="run') == len(csv) == len(MODELS)


def test_page_loads_nothing_from_outside(page):
    text = page.read_text()
    assert not re.search(r"https?:|ftp:|//[\w-]+\.", text)
    assert all(value.startswith("data:") for value in re.findall(r'(?:src|href)="([^"]*)"', text))
    assert "<script src" not in text and "@import" not in text
    assert text.count('src="data:image/png;base64,') == 2  # both plots embedded


def test_cli_html(tmp_path, capsys):
    for name in MODELS:
        write_run(tmp_path, name)
    parser = argparse.ArgumentParser()
    leaderboard.add_arguments(parser)
    args = parser.parse_args([str(tmp_path / "runs"), "--target", "target", "--out", str(tmp_path / "cli"), "--html"])
    assert leaderboard.run(args) == 0
    assert (tmp_path / "cli" / "leaderboard.html").read_text().startswith("<!DOCTYPE html>")
    assert "leaderboard.csv, leaderboard.html, plots" in capsys.readouterr().out


def test_robustness_figure_is_embedded_when_present(tmp_path):
    for name in MODELS:
        write_run(tmp_path, name)
    figure = tmp_path / "out" / "robustness.png"
    figure.parent.mkdir()
    figure.write_bytes(b"\x89PNG robustness")
    build_leaderboard([tmp_path / "runs"], "target", "retain", tmp_path / "out", html=True)
    text = (tmp_path / "out" / "leaderboard.html").read_text()
    assert text.count('src="data:image/png;base64,') == 3
    assert f'src="data:image/png;base64,{base64.b64encode(figure.read_bytes()).decode()}"' in text
    assert "Robustness: each metric before and after each attack" in text


def test_tooltips_are_the_rows_of_docs_metrics(page):
    text = page.read_text()
    for column in columns_for("forget01"):
        if column.optional:
            continue
        row = doc_row(column.doc[0], column.doc[1].format(task=column.task), column.doc[2])
        assert row, f"{column.name}: no row in docs/metrics.md"
        assert escape(row) in title(text, column.name), column.name
    for name, key in (("forget ES", "es"), ("model utility", "model_utility"), ("privleak", "privleak")):
        assert escape(docs_cell(key)) in title(text, name), name  # read here without the parser under test


def test_cells_are_coloured_against_the_references(page):
    text = page.read_text()
    assert 'class="bad"' in row_cells(text, "target")["forget ES"]  # the target is the unforgotten extreme
    assert 'class="good"' in row_cells(text, "retain")["forget ES"]
    assert 'class="good"' in row_cells(text, "npo")["forget ES"]  # |0.1 - 0.2| / |0.8 - 0.2| = 1/6
    assert 'class="mid"' in row_cells(text, "ga_mix")["forget prob"]  # |0.4 - 0.1| / 0.8 = 0.375
    assert 'class="good"' in row_cells(text, "ga_mix")["model utility"]  # 90 % of the target's ≥ τ
    assert 'class="bad"' in row_cells(text, "ga")["model utility"]  # 25 % < τ/2
    assert 'class="bad"' in row_cells(text, "ga")["model utility (% target)"]
    assert 'class="mid"' in row_cells(text, "npo")["retain ES (% target)"]  # 50 %: ≥ τ/2, < τ
    assert 'class="good"' in row_cells(text, "ga_mix")["retain ES (% target)"]
    assert 'data-value=""' in row_cells(text, "npo")["MMLU acc"] and "class=" not in row_cells(text, "npo")["MMLU acc"]


def test_muse_and_wmdp_columns_appear_with_their_docs_when_a_run_has_them(tmp_path):
    for name in MODELS:
        path = write_run(tmp_path, name)
        if name in ("target", "ga"):
            data = json.loads(path.read_text())
            data["results"] |= {"unlearn_muse_news_verbmem": scores(rougeL_f1=0.5, rougeL_recall=0.6),
                                "unlearn_wmdp": scores(acc=0.3)}
            path.write_text(json.dumps(data))
    table = build_leaderboard([tmp_path / "runs"], "target", "retain", tmp_path / "out", html=True).set_index("model")
    assert table.loc["ga", "MUSE VerbMem"] == 0.5 and table.loc["ga", "WMDP acc"] == 0.3
    assert "MUSE KnowMem forget" not in table.columns  # no run has it
    text = (tmp_path / "out" / "leaderboard.html").read_text()
    assert title(text, "MUSE VerbMem").startswith("lower is better (more forgotten). unlearn_muse_news_verbmem rougeL_f1: ")
    assert escape(docs_cell("unlearn_muse_news_verbmem")) in title(text, "MUSE VerbMem")
    assert escape(docs_cell("unlearn_wmdp")) in title(text, "WMDP acc")


def test_run_metadata(tmp_path):
    path = write_run(tmp_path, "npo")
    data = json.loads(path.read_text())
    data["date"] = 1735812000.0  # 2025-01-02 10:00 UTC
    for config in data["configs"].values():
        config["metadata"] |= {"convention": "open-unlearning", "attack": "noise", "attack_rate": 0.3, "attack_seed": 0}
    data["configs"][FORGET] |= {"dataset_path": "json", "dataset_kwargs": {"config": "forget01_perturbed"}}
    data["configs"][UTILITY] |= {"custom_dataset": "def load(...)", "dataset_kwargs": {"config": "retain_perturbed"}}
    data["configs"]["unlearn_probes"] |= {"custom_dataset": "def load(...)", "dataset_kwargs": {"config": "piqa"}}
    path.write_text(json.dumps(data))
    control = {"method": "npo", "attack": "quantize", "bits": 4}
    (tmp_path / "checkpoints" / "npo" / "control.json").write_text(json.dumps(control))
    about = run_metadata(load_run(path))
    assert about == {"model": str(tmp_path / "checkpoints" / "npo"), "convention": "open-unlearning",
                     "attack": "noise (rate=0.3, seed=0) + quantize (4-bit)",
                     "task versions": "; ".join(f"{task} v1" for task in sorted(data["versions"])),
                     "data source": "json: forget01_perturbed; unlearn_tasks loader: piqa, retain_perturbed",
                     "date": "2025-01-02 10:00 UTC",
                     "control file": str(tmp_path / "checkpoints" / "npo" / "control.json")}


@requires(ANCHOR, "the open-unlearning anchor")
def test_rows_of_another_convention_are_flagged(page, tmp_path):
    runs = page.parent.parent / "runs"
    build_leaderboard([runs, ANCHOR], "target", "retain", tmp_path / "mixed", html=True)
    text = (tmp_path / "mixed" / "leaderboard.html").read_text()
    flagged = [line for line in text.splitlines() if line.startswith('<tr class="run flagged"')]
    assert len(flagged) == 1 and ">⚠ open-unlearning-smollm2-forget01</td>" in flagged[0]
    assert "convention open-unlearning (target: default)" in flagged[0]
    assert not re.search(r"https?:", text)


# ---- in the browser ---------------------------------------------------------------------------------

@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1600,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def visible_column(driver, name: str) -> list[str]:
    index = driver.execute_script(
        "return Array.from(document.querySelectorAll('#leaderboard th[data-index]'))"
        ".findIndex(h => h.dataset.name === arguments[0]);", name)
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#leaderboard tbody tr:not(.hidden)'))"
        ".map(r => r.cells[arguments[0]].dataset.value);", index)


def test_page_in_chromium(page, browser):
    from selenium.webdriver.common.by import By

    csv = pd.read_csv(page.parent / "leaderboard.csv")
    browser.get(page.resolve().as_uri())
    assert len(browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")) == len(csv)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#leaderboard th[data-index]")) == len(csv.columns)
    assert [float(value) for value in visible_column(browser, "forget ES")] == list(csv["forget ES"])

    header = browser.find_element(By.CSS_SELECTOR, '#leaderboard th[data-name="forget ES"]')
    header.click()
    assert [float(value) for value in visible_column(browser, "forget ES")] == sorted(csv["forget ES"])
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert [float(value) for value in visible_column(browser, "forget ES")] == sorted(csv["forget ES"], reverse=True)
    browser.find_element(By.CSS_SELECTOR, '#leaderboard th[data-name="MMLU acc"]').click()
    mmlu = visible_column(browser, "MMLU acc")
    assert mmlu[-1] == "" and [float(value) for value in mmlu[:-1]] == sorted(csv["MMLU acc"].dropna())  # blank last

    browser.find_element(By.CSS_SELECTOR, 'button[data-view="controlled"]').click()
    shown = set(visible_column(browser, "model"))
    assert shown == set(csv[csv["group"].isin(["reference"]) | csv["group"].str.startswith("controlled")]["model"])
    browser.find_element(By.CSS_SELECTOR, 'button[data-view="plain"]').click()
    assert set(visible_column(browser, "model")) == set(csv[csv["group"].isin(["reference", "plain"])]["model"])
    browser.find_element(By.CSS_SELECTOR, 'button[data-view="all"]').click()
    browser.execute_script("const s = document.getElementById('filter-method'); s.value = 'npo';"
                           "s.dispatchEvent(new Event('change'));")
    assert sorted(visible_column(browser, "model")) == ["npo", "npo_mix", "retain", "target"]

    shot = page.parent / "leaderboard.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes().startswith(b"\x89PNG")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def test_screenshot_of_the_page(page, tmp_path):
    """What the demo writes as leaderboard.png for the README: Chromium's rendering of the page."""
    if not CHROMIUM:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    png = screenshot(page, tmp_path / "shot" / "leaderboard.png", size=(800, 600))
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and int.from_bytes(data[16:20], "big") == 800  # the PNG's width
