"""The reference workflow's sample dataset, identical for the Airflow and the Prefect examples.

Standard library only, so the example DAG stays cheap to parse.
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
from pathlib import Path

__all__ = ["FEATURES", "KEY_COLUMN", "demo_dir", "write_sample_csv"]

FEATURES = ("f0", "f1", "f2", "f3")
"""Numeric feature columns of the sample (what the demo model was trained on)."""
KEY_COLUMN = "row_id"
"""The column identifying each sample row."""


def demo_dir() -> Path:
    """Return the demo output folder: ``$GUARDFLOW_DEMO_DIR``, else ``<tmp>/guardflow-demo``."""
    return Path(
        os.environ.get("GUARDFLOW_DEMO_DIR") or Path(tempfile.gettempdir()) / "guardflow-demo"
    )


def write_sample_csv(path: str | os.PathLike[str], rows: int = 250, seed: int = 7) -> Path:
    """Write the deterministic sample dataset as CSV, atomically (temp file, then rename).

    Args:
        path: Destination file; parent folders are created.
        rows: Number of rows.
        seed: Random seed; the same seed gives the same file.

    Returns:
        The path written.
    """
    target = Path(path)
    rng = random.Random(seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([KEY_COLUMN, *FEATURES])
        for i in range(rows):
            writer.writerow([f"row-{i:05d}", *(round(rng.uniform(-10, 10), 6) for _ in FEATURES)])
    tmp.replace(target)
    return target
