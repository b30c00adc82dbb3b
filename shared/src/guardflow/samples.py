"""The reference workflow's sample datasets, identical for the Airflow and the Prefect examples.

Three datasets, all with the key column and the numeric features ``f0``..``f3`` drawn uniformly
from [-10, 10]:

- the *sample* (:func:`write_sample_csv`): what ``ingest`` lands and the model scores;
- the *reference* (:func:`write_reference_csv`): the data the model was validated on, which the
  drift check compares the sample against; same distribution, so the sample does not drift;
- the *drifted sample* (``write_sample_csv(..., drift=True)``): ``f0``..``f2`` drawn from
  [2, 10] instead. Every value stays inside the valid range, so data-quality checks still pass,
  but the distributions moved: the drift check flags those columns and the dataset;
- the *landed sample* (:func:`write_landed_csv`): the sample as it arrives from a source system,
  with two more columns holding (made-up) personal data: ``email`` (one address per row) and
  ``note`` (free text with e-mail addresses, phone numbers and test card numbers). The reference
  workflow masks it before anything else reads it.

After scoring, :func:`write_review_items` turns the model's scores into labelled items with a
confidence, which the reference workflow's approval gate routes: only low-confidence items go to
a human.

Standard library only, so the example DAG stays cheap to parse.
"""

from __future__ import annotations

import csv
import os
import random
import tempfile
from pathlib import Path

__all__ = [
    "DRIFTED_FEATURES",
    "FEATURES",
    "KEY_COLUMN",
    "PII_COLUMNS",
    "REFERENCE_ROWS",
    "REVIEW_SCALE",
    "demo_dir",
    "label_prediction",
    "write_landed_csv",
    "write_reference_csv",
    "write_review_items",
    "write_sample_csv",
]

FEATURES = ("f0", "f1", "f2", "f3")
"""Numeric feature columns of the sample (what the demo model was trained on)."""
KEY_COLUMN = "row_id"
"""The column identifying each sample row."""
DRIFTED_FEATURES = ("f0", "f1", "f2")
"""The features whose distribution moves in the drifted sample."""
PII_COLUMNS = ("email", "note")
"""Columns of the landed sample that hold personal data (made up, for the masking step)."""
REFERENCE_ROWS = 1000
"""Rows in the reference dataset (at most 1,000: the drift tests are then K-S p-values)."""

REVIEW_SCALE = 10.0
"""Distance of a score from the decision boundary (0) at which the demo is fully confident."""

# Seeds picked so that the sample is a typical draw from the reference's distribution: every
# feature's K-S p-value against the reference is above 0.5, so the demo does not drift by chance.
_SAMPLE_SEED = 5
_REFERENCE_SEED = 1001
_LOW, _HIGH = -10.0, 10.0
_DRIFTED_LOW = 2.0


def demo_dir() -> Path:
    """Return the demo output folder: ``$GUARDFLOW_DEMO_DIR``, else ``<tmp>/guardflow-demo``."""
    return Path(
        os.environ.get("GUARDFLOW_DEMO_DIR") or Path(tempfile.gettempdir()) / "guardflow-demo"
    )


def write_sample_csv(
    path: str | os.PathLike[str], rows: int = 250, seed: int = _SAMPLE_SEED, *, drift: bool = False
) -> Path:
    """Write the deterministic sample dataset as CSV, atomically (temp file, then rename).

    Args:
        path: Destination file; parent folders are created.
        rows: Number of rows.
        seed: Random seed; the same seed gives the same file.
        drift: Draw :data:`DRIFTED_FEATURES` from [2, 10] instead of [-10, 10]: values stay
            valid, distributions move.

    Returns:
        The path written.

    Examples:
        >>> write_sample_csv(tmp_path / "input.csv", drift=True)  # doctest: +SKIP
    """
    drifted = DRIFTED_FEATURES if drift else ()
    return _write(path, rows=rows, seed=seed, key_prefix="row", drifted=drifted)


def write_landed_csv(
    path: str | os.PathLike[str], rows: int = 250, seed: int = _SAMPLE_SEED, *, drift: bool = False
) -> Path:
    """Write the sample with :data:`PII_COLUMNS` added, as a source system would land it.

    The key and feature values are those of :func:`write_sample_csv` with the same arguments; the
    personal data is made up (``example.com`` addresses, 555 phone numbers, the card networks'
    published test numbers) and drawn from its own random stream.

    Args:
        path: Destination file; parent folders are created.
        rows: Number of rows.
        seed: Random seed; the same seed gives the same file.
        drift: As for :func:`write_sample_csv`.

    Returns:
        The path written.
    """
    drifted = DRIFTED_FEATURES if drift else ()
    return _write(path, rows=rows, seed=seed, key_prefix="row", drifted=drifted, pii=True)


_TEST_CARDS = ("4111 1111 1111 1111", "5555-5555-5555-4444", "2223 0031 2200 3222")
_NOTES = (
    "Customer asked to be called back on {phone}.",
    "Refund to card {card} approved; confirmation sent to {email}.",
    "Prefers e-mail ({email}) over phone.",
    "No contact details given.",
)


def _personal(rng: random.Random, i: int) -> list[str]:
    email = f"customer{i:05d}@example.com"
    phone = f"(212) 555-{rng.randrange(100, 10000):04d}"
    note = rng.choice(_NOTES).format(
        phone=phone, card=rng.choice(_TEST_CARDS), email=f"c{i}.alt@example.org"
    )
    return [email, note]


def write_reference_csv(
    path: str | os.PathLike[str], rows: int = REFERENCE_ROWS, seed: int = _REFERENCE_SEED
) -> Path:
    """Write the reference dataset the drift check compares the sample against, atomically.

    Same columns and distribution as the (undrifted) sample, drawn with another seed; keys are
    ``ref-00000``, ``ref-00001``...

    Args:
        path: Destination file; parent folders are created.
        rows: Number of rows.
        seed: Random seed; the same seed gives the same file.

    Returns:
        The path written.
    """
    return _write(path, rows=rows, seed=seed, key_prefix="ref", drifted=())


def _write(
    path: str | os.PathLike[str],
    *,
    rows: int,
    seed: int,
    key_prefix: str,
    drifted: tuple[str, ...],
    pii: bool = False,
) -> Path:
    target = Path(path)
    rng = random.Random(seed)
    # A stream of its own, so the features are the same with or without the personal columns.
    personal = random.Random(seed + 1_000_003)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process: two runs landing the same file at once must not share a temp file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([KEY_COLUMN, *FEATURES, *(PII_COLUMNS if pii else ())])
        for i in range(rows):
            values = [
                round(rng.uniform(_DRIFTED_LOW if f in drifted else _LOW, _HIGH), 6)
                for f in FEATURES
            ]
            extra = _personal(personal, i) if pii else []
            writer.writerow([f"{key_prefix}-{i:05d}", *values, *extra])
    tmp.replace(target)
    return target


def label_prediction(score: float, *, scale: float = REVIEW_SCALE) -> tuple[str, float]:
    """Turn the demo model's score into a label and a confidence in [0, 1].

    The label is ``positive`` for scores at or above 0 and ``negative`` below; the confidence is
    the score's distance from that boundary relative to ``scale`` (capped at 1), so scores near 0
    are the uncertain ones a human should look at.

    Args:
        score: The model's output for one row.
        scale: Distance from the boundary that counts as full confidence.

    Returns:
        ``(label, confidence)``, the confidence rounded to 4 digits.

    Examples:
        >>> label_prediction(-2.5)
        ('negative', 0.25)
    """
    label = "positive" if score >= 0 else "negative"
    return label, round(min(1.0, abs(score) / scale), 4)


def write_review_items(
    scores_uri: str | os.PathLike[str],
    items_uri: str | os.PathLike[str],
    *,
    key_column: str = KEY_COLUMN,
    score_column: str = "prediction",
) -> Path:
    """Write one review item per scored row: its key, features, label and confidence (JSONL).

    Only the key, the :data:`FEATURES`, the label and the confidence are kept: the items are
    what reviewers see, so the masked personal columns stay out.

    Args:
        scores_uri: The scoring output (Parquet, CSV or JSONL) with ``key_column`` and
            ``score_column``.
        items_uri: Destination JSON Lines file, written atomically.
        key_column: The row key, kept as the item id.
        score_column: The model's score.

    Returns:
        The path written.
    """
    import json

    from guardflow.tables import read_table

    rows = read_table(str(scores_uri)).select([key_column, *FEATURES, score_column]).to_pylist()
    target = Path(items_uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            score = row.pop(score_column)
            if score is None:
                label, confidence = None, None
            else:
                label, confidence = label_prediction(float(score))
            row.update({"label": label, "confidence": confidence})
            fh.write(json.dumps(row) + "\n")
    tmp.replace(target)
    return target
