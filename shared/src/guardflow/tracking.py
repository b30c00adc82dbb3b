"""Log drift reports and data-quality summaries to MLflow, on any tracking URI.

Each call logs one result into one MLflow run (a new one, or ``run_id``'s): scores and counts as
metrics, the settings as params, fingerprints and the verdict as tags, the result's JSON (and the
Evidently HTML report, when one was written) as artifacts under ``guardflow/``. Nothing logged
holds a data value: reports and summaries never contain any. MLflow is imported on first use
(``mlflow`` extra), and the client is built for the call, so MLflow's process-wide tracking URI
and active run are left alone.

What is logged by :func:`log_drift_report`:

- metrics ``drift.drifted_share``, ``drift.drifted_count``, ``drift.column_count``,
  ``drift.dataset_drift`` (0 or 1), ``drift.reference_rows``, ``drift.current_rows`` and one
  ``drift.<column>.score`` per column;
- params ``drift.engine``, ``drift.methods``, ``drift.drift_share``;
- tags ``guardflow.step`` (``drift``), ``guardflow.dataset_drift`` (``true``/``false``),
  ``guardflow.reference_fingerprint``, ``guardflow.current_fingerprint``;
- artifacts ``guardflow/drift_report.json`` and ``guardflow/drift_report.html`` (when rendered).

What is logged by :func:`log_quality_summary`:

- metrics ``quality.success`` (0 or 1), ``quality.success_percent``, ``quality.evaluated``,
  ``quality.successful``, ``quality.unsuccessful``, ``quality.rows`` and, per failed expectation,
  ``quality.<type>.<column>.unexpected_count`` / ``.unexpected_percent`` / ``.observed_value``
  (those it has);
- param ``quality.suite``;
- tags ``guardflow.step`` (``quality``), ``guardflow.suite``, ``guardflow.quality_success``,
  ``guardflow.data_fingerprint``;
- artifact ``guardflow/quality_summary.json``.

Column names become part of metric names: characters MLflow does not accept (anything but
letters, digits, ``_ - .``) are replaced by ``_`` and a short hash of the original name is
appended, so two columns never share a metric (see :func:`metric_name`).

Examples:
    >>> metric_name("drift.", "age", ".score")
    'drift.age.score'
    >>> metric_name("drift.", "first name", ".score")
    'drift.first_name-1b836d86.score'
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardflow._optional import require
from guardflow.errors import TrackingError
from guardflow.tables import local_path, safe_uri

if TYPE_CHECKING:
    from guardflow.drift import DriftReport
    from guardflow.quality import QualitySummary

__all__ = ["log_drift_report", "log_quality_summary", "metric_name"]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_MAX_NAME = 180
_MAX_DETAIL = 400
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s]+@")
_DEFAULT_EXPERIMENT = "guardflow"
_RETRYABLE_CODES = {"TEMPORARILY_UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL_ERROR"}


def metric_name(prefix: str, name: str, suffix: str = "") -> str:
    """Return ``prefix + name + suffix`` with ``name`` made safe for an MLflow metric key.

    A name MLflow would refuse (characters other than letters, digits, ``_ - .``, or longer than
    180 characters) is rewritten with ``_`` and suffixed with 8 hex digits of its SHA-256, so
    distinct names stay distinct.

    Args:
        prefix: Prefix such as ``"drift."``.
        name: A column name (or any free text).
        suffix: Suffix such as ``".score"``.
    """
    safe = _UNSAFE.sub("_", name)
    if safe != name or len(safe) > _MAX_NAME or not safe:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        safe = f"{safe[:_MAX_NAME]}-{digest}"
    return f"{prefix}{safe}{suffix}"


def log_drift_report(
    report: DriftReport,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_id: str | None = None,
    run_name: str | None = None,
) -> str:
    """Log a drift report to MLflow and return the run id.

    Args:
        report: The :class:`~guardflow.drift.DriftReport` to log.
        tracking_uri: MLflow tracking URI (``http(s)://...``, ``sqlite:///...``, ``databricks``,
            ``file:`` with ``MLFLOW_ALLOW_FILE_STORE=true``...); default: MLflow's own resolution
            (``MLFLOW_TRACKING_URI``, else its default store).
        experiment: Experiment name for a new run, created if missing; default:
            ``$MLFLOW_EXPERIMENT_NAME``, else ``"guardflow"``.
        run_id: Log into this existing run instead (it is left in its current state;
            ``experiment`` and ``run_name`` are then ignored).
        run_name: Name of the new run.

    Returns:
        The MLflow run id.

    Raises:
        TrackingError: The tracking server could not be reached or refused the data (for example
            a param already logged to ``run_id`` with another value).
        MissingExtraError: mlflow is not installed (``mlflow`` extra).

    Examples:
        >>> run_id = log_drift_report(report, tracking_uri="sqlite:///mlflow.db",
        ...                           experiment="orders-drift")  # doctest: +SKIP
    """
    metrics: dict[str, float] = {
        "drift.drifted_share": report.drifted_share,
        "drift.drifted_count": report.drifted_count,
        "drift.column_count": report.column_count,
        "drift.dataset_drift": float(report.dataset_drift),
        "drift.reference_rows": report.reference_rows,
        "drift.current_rows": report.current_rows,
    }
    for column in report.columns:
        metrics[metric_name("drift.", column.column, ".score")] = column.score
    tags = {
        "guardflow.step": "drift",
        "guardflow.dataset_drift": str(report.dataset_drift).lower(),
        "guardflow.reference_fingerprint": report.reference_fingerprint,
        "guardflow.current_fingerprint": report.current_fingerprint,
    }
    params = {
        "drift.engine": report.engine,
        "drift.methods": ",".join(sorted({c.method for c in report.columns})),
        "drift.drift_share": f"{report.drift_share:g}",
    }
    files = {"drift_report.json": report.to_json(indent=2).encode("utf-8")}
    return _log(
        what="drift report",
        metrics=metrics,
        params=params,
        tags=tags,
        files=files,
        html_uri=report.html_uri,
        tracking_uri=tracking_uri,
        experiment=experiment,
        run_id=run_id,
        run_name=run_name,
    )


def log_quality_summary(
    summary: QualitySummary,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_id: str | None = None,
    run_name: str | None = None,
) -> str:
    """Log a data-quality summary to MLflow and return the run id.

    Args:
        summary: The :class:`~guardflow.quality.QualitySummary` to log.
        tracking_uri: MLflow tracking URI (see :func:`log_drift_report`).
        experiment: Experiment name for a new run (default ``$MLFLOW_EXPERIMENT_NAME``, else
            ``"guardflow"``).
        run_id: Log into this existing run instead.
        run_name: Name of the new run.

    Returns:
        The MLflow run id.

    Raises:
        TrackingError: The tracking server could not be reached or refused the data.
        MissingExtraError: mlflow is not installed (``mlflow`` extra).

    Examples:
        >>> run_id = log_quality_summary(summary, tracking_uri="sqlite:///mlflow.db",
        ...                              run_name="orders-quality")  # doctest: +SKIP
    """
    metrics: dict[str, float] = {
        "quality.success": float(summary.success),
        "quality.success_percent": summary.success_percent,
        "quality.evaluated": summary.evaluated,
        "quality.successful": summary.successful,
        "quality.unsuccessful": summary.unsuccessful,
        "quality.rows": summary.rows,
    }
    seen: dict[str, int] = {}
    for item in summary.failed:
        base = metric_name(f"quality.{item.type}.", "+".join(item.columns) or "table")
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:  # the same check twice on one column (other kwargs)
            base = f"{base}_{seen[base]}"
        for field in ("unexpected_count", "unexpected_percent", "observed_value"):
            value = getattr(item, field)
            if value is not None:
                metrics[f"{base}.{field}"] = float(value)
    tags = {
        "guardflow.step": "quality",
        "guardflow.suite": summary.suite_name,
        "guardflow.quality_success": str(summary.success).lower(),
        "guardflow.data_fingerprint": summary.data_fingerprint,
    }
    files = {"quality_summary.json": summary.to_json(indent=2).encode("utf-8")}
    return _log(
        what="quality summary",
        metrics=metrics,
        params={"quality.suite": summary.suite_name},
        tags=tags,
        files=files,
        html_uri=None,
        tracking_uri=tracking_uri,
        experiment=experiment,
        run_id=run_id,
        run_name=run_name,
    )


def _log(
    *,
    what: str,
    metrics: Mapping[str, float],
    params: Mapping[str, str],
    tags: Mapping[str, str | None],
    files: Mapping[str, bytes],
    html_uri: str | None,
    tracking_uri: str | None,
    experiment: str | None,
    run_id: str | None,
    run_name: str | None,
) -> str:
    mlflow = require("mlflow", "mlflow")
    entities = require("mlflow.entities", "mlflow")
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    where = safe_uri(tracking_uri or mlflow.get_tracking_uri())
    created: str | None = None
    try:
        if run_id is None:
            experiment_id = _experiment_id(client, experiment)
            created = run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
        else:
            client.get_run(run_id)  # fails clearly on an unknown run before anything is logged
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[entities.Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[entities.Param(k, v) for k, v in params.items()],
            tags=[entities.RunTag(k, v) for k, v in tags.items() if v is not None],
        )
        with tempfile.TemporaryDirectory(prefix="guardflow-mlflow-") as tmp:
            folder = Path(tmp) / "guardflow"
            folder.mkdir()
            for name, data in files.items():
                (folder / name).write_bytes(data)
            if html_uri:
                _fetch_html(html_uri, folder / "drift_report.html")
            client.log_artifacts(run_id, str(folder), artifact_path="guardflow")
    except Exception as exc:
        if created is not None:
            _terminate(client, created, "FAILED")
        # Not chained: MLflow's own message may quote the raw URI, credentials included.
        raise _tracking_error(exc, what=what, where=where, raw=tracking_uri) from None
    if created is not None:
        _terminate(client, created, "FINISHED")
    logger.info("logged the %s to MLflow run %s at %s", what, run_id, where)
    return run_id


def _experiment_id(client: Any, name: str | None) -> str:
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or _DEFAULT_EXPERIMENT
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name))
        except Exception:
            # Another worker may have created it in the meantime.
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise TrackingError(
            f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore) "
            "or log to another experiment"
        )
    return str(found.experiment_id)


def _fetch_html(uri: str, target: Path) -> None:
    path = local_path(uri)
    if path is not None:
        if not Path(path).is_file():
            logger.warning("HTML report %s is gone; logging the JSON only", safe_uri(uri))
            return
        shutil.copyfile(path, target)
        return
    with require("fsspec", "data").open(uri, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)


def _terminate(client: Any, run_id: str, status: str) -> None:
    try:
        client.set_terminated(run_id, status)
    except Exception:  # the original error (or success) matters more than the run's status
        logger.warning("could not mark MLflow run %s as %s", run_id, status)


def _tracking_error(exc: Exception, *, what: str, where: str, raw: str | None) -> TrackingError:
    if isinstance(exc, TrackingError):
        return exc
    code = getattr(exc, "error_code", None)
    if code is not None:  # MlflowException: about our own keys and settings, and the URL
        message = str(getattr(exc, "message", "") or type(exc).__name__)
        if raw:
            message = message.replace(raw, where)
        message = _USERINFO.sub(r"\1", message)
        if len(message) > _MAX_DETAIL:
            message = message[:_MAX_DETAIL] + "..."
        detail = f"{code}: {message}"
        retryable = code in _RETRYABLE_CODES
    else:
        detail, retryable = type(exc).__name__, True
    return TrackingError(
        f"could not log the {what} to MLflow at {where!r} ({detail}); check the tracking URI, "
        "that the server is up and that the run is active",
        tracking_uri=where,
        retryable=retryable,
    )
