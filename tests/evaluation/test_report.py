"""Evaluation reports: complete JSON, and an HTML page that needs nothing from the network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bookrec.evaluation.report import write_report
from bookrec.recsys.data import Catalog, Interactions
from bookrec.recsys.evaluate import EvaluationResult, evaluate
from bookrec.recsys.popularity import PopularityConfig, PopularityRecommender
from bookrec.recsys.splits import random_holdout

HOSTILE = "<script>alert('x')</script> & $x$"  # HTML, an entity and matplotlib mathtext


@pytest.fixture(scope="module")
def result() -> EvaluationResult:
    rng = np.random.default_rng(4)
    n = 3000
    users = rng.integers(1, 120, size=n)
    books = (rng.zipf(1.6, size=n) % 200) + 1  # a popularity skew
    data = Interactions.from_ids(users, books, rng.integers(1, 6, size=n), np.arange(n))
    train, test = random_holdout(data, seed=1)
    models = {
        "popularity": PopularityRecommender(),
        HOSTILE: PopularityRecommender(PopularityConfig(score="bayesian")),
    }
    return evaluate(models, train, test, Catalog.empty(data.items), k=5)


META = {"dataset": "synthetic <zipf>", "split": "random_holdout(0.2)", "seed": 1}


def test_json_holds_everything(result: EvaluationResult, tmp_path: Path) -> None:
    json_path, _ = write_report(result, tmp_path / "out", META, bins=(0, 10, 20))
    text = json_path.read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert data["meta"]["dataset"] == "synthetic <zipf>"
    assert data["meta"]["k"] == 5
    assert "date" in data["meta"]
    assert data["models"] == ["popularity", HOSTILE]
    assert set(data["metrics"]["popularity"]) >= {"ndcg@5", "recall@5", "coverage", "novelty"}
    assert data["by_history_length"]["ndcg"]["edges"] == [0, 10, 20]
    assert data["popularity_bias"]["per_model"]["popularity"] is not None
    assert len(data["per_user"]["user_ids"]) == len(result.user_ids)
    assert len(data["per_user"]["metrics"]["popularity"]["ndcg@5"]) == len(result.user_ids)
    lean, _ = write_report(result, tmp_path / "lean", META, per_user=False)
    assert "per_user" not in json.loads(lean.read_text())


def test_html_is_self_contained_and_escaped(result: EvaluationResult, tmp_path: Path) -> None:
    _, html_path = write_report(result, tmp_path, META)
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3  # metric bars, NDCG by history length, popularity bias
    assert "popularity" in page
    # the hostile model name is escaped in the table and drawn as text in the plots
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; $x$" in page
    assert "synthetic &lt;zipf&gt;" in page
    assert 'class="best"' in page
    # nothing to fetch: the only URLs are XML namespace names
    assert "http" not in re.sub(r'xmlns(:\w+)?="http[^"]*"', "", page)
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import", page)
    # ids stay unique across the inline SVGs
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert ids
    assert len(ids) == len(set(ids))


def test_report_without_models(tmp_path: Path) -> None:
    data = Interactions.from_ids(np.array([1, 1]), np.array([1, 2]), np.array([5, 5]))
    empty = evaluate({}, data, data, Catalog.empty(data.items))
    json_path, html_path = write_report(empty, tmp_path, {})
    assert json.loads(json_path.read_text())["models"] == []
    assert "<svg" not in html_path.read_text()
