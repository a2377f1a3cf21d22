"""The quality guard: the README pipeline on movielens-small, scored by an independent script.

`bookrec db upgrade`, `bookrec data import TRAIN`, `bookrec train` (the default recommender),
`bookrec recommend --batch USERS --k 10`, then ../shared/tools/refeval.py scores the lists
with its protocol (per-user 20 % holdout, seed 7, relevant = rating >= 4, train items
excluded). Any change that loses quality fails here. The pipeline is
`benchmarks.quality_bench`'s, which docs/benchmarks.md reports from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks import quality_bench

from tests.fixtures.movielens import require_refeval

#: NDCG@10 of the default recommender measured on 2026-12-01 was 0.3245 (docs/benchmarks.md);
#: the floor sits 3 % under it, outside the run-to-run spread of training.
NDCG_FLOOR = 0.315


@pytest.mark.slow
def test_the_default_pipeline_keeps_its_quality_on_movielens(
    movielens: Path, tmp_path: Path
) -> None:
    results = tmp_path / "quality.json"
    code = quality_bench.main(
        [
            str(movielens),
            "--algos",
            "default",
            "--no-baselines",
            "--refeval",
            str(require_refeval()),
            "--out",
            str(results),
        ]
    )
    assert code == 0
    default = json.loads(results.read_text())["results"]["default"]
    assert default["algo"] == "hybrid"
    assert default["users"] > 500
    assert default["ndcg@10"] >= NDCG_FLOOR, default
