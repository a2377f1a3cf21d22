"""Tuned hyper-parameters on disk: `bookrec tune` writes them, `bookrec train` reads them.

One JSON file per algorithm under VAR/tuning/, written atomically, holding the best params,
the validation score that chose them and what data they were tuned on.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class TunedParams:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, algo: str) -> Path:
        return self.directory / f"{algo}.json"

    def get(self, algo: str) -> dict[str, Any] | None:
        """The stored record for `algo` ({"params": ..., "score": ..., ...}) or None."""
        try:
            record = json.loads(self.path(algo).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None
        return (
            record if isinstance(record, dict) and isinstance(record.get("params"), dict) else None
        )

    def params(self, algo: str) -> dict[str, Any]:
        record = self.get(algo)
        return dict(record["params"]) if record else {}

    def put(self, algo: str, record: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{algo}.", dir=self.directory)
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
        os.replace(temporary, self.path(algo))
        return self.path(algo)
