"""The directory API workers share their metrics through (no prometheus-client import here:
it must be set up before prometheus-client is imported, which reads it once)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: prometheus-client's variable naming the directory the processes share.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(directory: Path) -> Path:
    """Create `directory`, remove what earlier runs left in it (their counts would be summed
    into this run's) and name it in this process's environment, which the server's workers
    and the embedded training worker inherit. Returns the directory."""
    if "prometheus_client" in sys.modules:  # its metrics would stay in this process alone
        raise RuntimeError("prepare_multiprocess_dir must run before prometheus_client loads")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory
