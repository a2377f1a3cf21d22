"""Artifacts never use pickle and are written all-or-nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bookrec.recsys.artifacts import ArtifactError, read_artifact, write_artifact


def test_object_arrays_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="pickle"):
        write_artifact(
            tmp_path / "a", {}, {"ok": np.arange(3), "bad": np.array([{}], dtype=object)}
        )
    assert list(tmp_path.iterdir()) == []


def test_a_pickled_file_is_not_loaded(tmp_path: Path) -> None:
    write_artifact(tmp_path / "a", {"algo": "x"}, {"values": np.arange(3)})
    evil = tmp_path / "a" / "values.npy"
    np.save(evil, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    # even with a matching checksum, np.load(allow_pickle=False) refuses object arrays
    from bookrec.recsys.artifacts import sha256_of

    manifest["files"]["values.npy"] = sha256_of(evil)
    (tmp_path / "a" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="not a plain numpy array"):
        read_artifact(tmp_path / "a")


def test_manifest_cannot_point_outside(tmp_path: Path) -> None:
    write_artifact(tmp_path / "a", {}, {"values": np.arange(3)})
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    manifest["files"] = {"../escape.npy": "0"}
    (tmp_path / "a" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unexpected file"):
        read_artifact(tmp_path / "a")


def test_round_trip_memory_maps(tmp_path: Path) -> None:
    write_artifact(tmp_path / "a", {"algo": "x"}, {"values": np.arange(5, dtype=np.float32)})
    manifest, arrays = read_artifact(tmp_path / "a")
    assert manifest["algo"] == "x" and manifest["format_version"] == 1
    assert isinstance(arrays["values"], np.memmap)
    assert arrays["values"].tolist() == [0, 1, 2, 3, 4]
