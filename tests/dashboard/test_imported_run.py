"""The dashboard on imported runs (``dmlviz import``): every page under AppTest, then a real
Chromium importing a set with the command line and opening its query lens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shared_files import HANG_GUARD_S
from test_browser import WAIT_MS, _serve, browser  # noqa: F401  (the fixture)

from dmlviz.cli import main
from dmlviz.data import inject_label_noise, load_dataset
from dmlviz.evaluate import evaluate_run
from dmlviz.project import project_run
from dmlviz.runs import Run

PAGES = ("runs", "noise_lab", "consistency", "map", "lens", "queries", "anatomy")


def _export_digits(folder: Path) -> dict[str, str]:
    """Digits pixels as 'embeddings of a model trained elsewhere', their PNGs and path lists,
    and train labels with 20 % flipped: the files a user would bring."""
    folder.mkdir(parents=True)
    args = {}
    for split in ("test", "train"):
        data = load_dataset("digits", split=split, protocol="classes")
        pixels = data.images.reshape(len(data), -1).numpy()
        np.save(folder / f"{split}.npy", pixels - pixels.mean(0))
        (folder / "images" / split).mkdir(parents=True)
        paths = []
        for i in range(len(data)):
            data.image(i).save(folder / "images" / split / f"{i}.png")
            paths.append(f"images/{split}/{i}.png")
        (folder / f"{split}_paths.txt").write_text("\n".join(paths) + "\n")
        names = np.array(data.class_names)
        labels = data.labels
        if split == "train":
            noisy = inject_label_noise(labels, 0.2, seed=0, num_classes=data.num_classes)
            (folder / "clean.txt").write_text("\n".join(names[noisy.clean]) + "\n")
            labels = noisy.observed
        (folder / f"{split}_labels.txt").write_text("\n".join(names[labels]) + "\n")
    prefix = {"test": "", "train": "train-"}
    for split, start in prefix.items():
        args[f"--{start}embeddings"] = str(folder / f"{split}.npy")
        args[f"--{start}labels"] = str(folder / f"{split}_labels.txt")
        args[f"--{start}images"] = str(folder / f"{split}_paths.txt")
    args["--clean-labels"] = str(folder / "clean.txt")
    return args


def _import(runs: Path, files: dict[str, str], name: str, **replace: str) -> Run:
    arguments = ["import", "--out", str(runs / name), "--name", name]
    for key, value in {**files, **replace}.items():
        arguments += [key, value]
    assert main(arguments) == 0
    run = Run.load(runs / name)
    evaluate_run(run)
    project_run(run, methods=("pca",))
    return run


@pytest.fixture(scope="module")
def imported_runs(tmp_path_factory) -> Path:
    """Two imported runs over the same digits images (pixels, and pixels plus noise)."""
    root = tmp_path_factory.mktemp("imported")
    files = _export_digits(root / "files")
    runs = root / "runs"
    _import(runs, files, "pixels")
    noisy = np.load(files["--embeddings"])
    noisy = noisy + np.random.default_rng(0).normal(0, 4, noisy.shape)
    np.save(root / "files" / "noisy.npy", noisy)
    _import(runs, files, "pixels-noisy", **{"--embeddings": str(root / "files" / "noisy.npy")})
    return runs


@pytest.fixture
def imported_app(imported_runs, monkeypatch):
    import streamlit as st
    from fixture_runs import APP
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DMLVIZ_RUNS", str(imported_runs))
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(str(APP), default_timeout=HANG_GUARD_S)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_on_an_imported_run(imported_app, page):
    imported_app.run()
    assert not imported_app.exception
    imported_app.switch_page(f"app_pages/{page}.py").run()
    assert not imported_app.exception, [e.value for e in imported_app.exception]
    assert not imported_app.error, [e.value for e in imported_app.error]
    assert imported_app.sidebar.selectbox[0].value.endswith("pixels")
    text = " ".join([e.value for e in imported_app.info] + [e.value for e in imported_app.caption])
    if page == "runs":
        assert (
            "Imported embeddings: trained outside dmlviz, so there are no training curves" in text
        )
        table = imported_app.dataframe[0].value
        assert set(table["Hyperparameters"]) == {"imported"}
    if page == "consistency":
        assert imported_app.metric[2].value not in ("-", "")  # the detector's AUROC is scored


def test_imported_runs_compare_in_the_lens(imported_app):
    imported_app.run()
    imported_app.switch_page("app_pages/lens.py").run()
    assert not imported_app.exception
    partner = imported_app.selectbox(key="lens_partner")
    assert partner.value is not None and partner.value.endswith("pixels-noisy")
    html = "".join(element.proto.body for element in imported_app.get("html"))
    assert html.count("dmlviz-card") >= 20  # both ranked lists
    assert "data:image/png;base64" in html


@pytest.mark.browser
@pytest.mark.slow
def test_import_then_open_its_query_lens_in_chromium(browser, tmp_path):  # noqa: F811
    files = _export_digits(tmp_path / "files")
    runs = tmp_path / "runs"
    run = _import(runs, files, "my-digits")
    with _serve(runs) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/lens", timeout=WAIT_MS)
        page.wait_for_selector("h1:has-text('Query lens')", timeout=WAIT_MS)
        cards = page.locator(".dmlviz-strip").first.locator(".dmlviz-card")
        cards.first.wait_for(timeout=WAIT_MS)
        assert cards.count() == 10
        assert page.locator("text=Top 10: my-digits · imported").is_visible()
        image = cards.first.locator("img")
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        assert image.evaluate("img => img.naturalWidth") > 0
        page.screenshot(path=str(tmp_path / "imported_lens.png"), full_page=True)
    assert run.eval_metrics("test")["map@r"] > 0


@pytest.fixture(scope="module")
def shop_runs(tmp_path_factory) -> Path:
    """One imported OML CSV run whose validation rows are split into queries and a gallery."""
    import pandas as pd

    root = tmp_path_factory.mktemp("shop")
    files = _export_digits(root / "files")
    labels = Path(files["--labels"]).read_text().splitlines()
    rows = pd.DataFrame(
        {
            "label": labels,
            "path": [f"images/test/{i}.png" for i in range(len(labels))],
            "split": "validation",
            "is_query": [i % 3 == 0 for i in range(len(labels))],
            "is_gallery": [i % 3 != 0 for i in range(len(labels))],
        }
    )
    rows.to_csv(root / "files" / "shop.csv", index=False)
    runs = root / "runs"
    out = runs / "shop"
    csv = str(root / "files" / "shop.csv")
    assert (
        main(["import", "--out", str(out), "--embeddings", files["--embeddings"], "--csv", csv])
        == 0
    )
    assert main(["evaluate", str(out)]) == 0
    assert main(["project", str(out), "--methods", "pca"]) == 0  # default splits: query, gallery
    assert Run.load(out).projection("query", "pca") is not None
    return runs


@pytest.mark.parametrize("page", ("lens", "queries", "map", "consistency"))
def test_query_against_gallery_pages(shop_runs, monkeypatch, page):
    import streamlit as st
    from fixture_runs import APP
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DMLVIZ_RUNS", str(shop_runs))
    st.cache_data.clear()
    st.cache_resource.clear()
    app = AppTest.from_file(str(APP), default_timeout=HANG_GUARD_S)
    app.run()
    app.switch_page(f"app_pages/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.sidebar.radio[0].value == "query"  # the default split of a shop-style run
    if page == "consistency":
        assert app.info[0].value.startswith("Imported without training embeddings")
    if page == "lens":
        html = "".join(element.proto.body for element in app.get("html"))
        assert html.count("dmlviz-card") >= 11 and "data:image/png;base64" in html
        assert not any("Ranked now from the embeddings" in c.value for c in app.caption)
    if page == "queries":
        queries = len(Run.load(shop_runs / "shop").embeddings("query")[1])
        shown = next(m for m in app.metric if m.label == "Queries shown")
        assert shown.value == f"{queries} / {queries}"  # every query is listed, a page at a time
        assert len(app.dataframe[0].value) == min(queries, 50)
