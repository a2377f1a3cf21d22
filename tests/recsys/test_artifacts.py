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


def test_catalog_text_is_stored_compactly_and_reads_back(tmp_path: Path) -> None:
    """Strings go as one UTF-8 buffer and offsets (a unicode array pads each to the longest,
    4 bytes a character); versions saved the old way still load."""
    from bookrec.recsys.data import Catalog, IdMap, Texts

    n = 400
    long_author = "Ann Author, " * 60  # one long value used to widen every row
    catalog = Catalog(
        items=IdMap.of(range(1, n + 1)),
        year=np.zeros(n, np.float32),
        language=np.full(n, "eng"),
        author_indptr=np.zeros(n + 1, np.int64),
        author_ids=np.zeros(0, np.int64),
        tag_indptr=np.zeros(n + 1, np.int64),
        tag_ids=np.zeros(0, np.int64),
        title=np.asarray([f"Título {i} — ünïcode" for i in range(n)]),
        authors=np.asarray([long_author if i == 0 else "B. Writer" for i in range(n)]),
    )
    write_artifact(tmp_path / "new", {}, catalog.to_arrays())
    padded = np.asarray(catalog.authors).nbytes
    stored = sum(p.stat().st_size for p in (tmp_path / "new").glob("catalog_authors*"))
    assert stored < padded / 20
    _, arrays = read_artifact(tmp_path / "new")
    loaded = Catalog.from_arrays(arrays)
    assert isinstance(loaded.title, Texts)
    assert list(loaded.title) == list(catalog.title)  # type: ignore[arg-type]
    assert loaded.title_of(7) == "Título 7 — ünïcode" and loaded.authors[0] == long_author

    old = {k: v for k, v in catalog.to_arrays().items() if "_utf8" not in k and "_offsets" not in k}
    old |= {"catalog_title": catalog.title, "catalog_authors": catalog.authors}
    write_artifact(tmp_path / "old", {}, old)
    _, arrays = read_artifact(tmp_path / "old")
    assert Catalog.from_arrays(arrays).title_of(3) == "Título 3 — ünïcode"
