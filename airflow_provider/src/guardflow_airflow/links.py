"""Extra links guardflow operators add to their task instances in the Airflow UI.

Airflow 3 computes an operator's links on the worker when the task finishes and stores each one
in XCom; the UI reads them from there. :class:`DriftReportLink` reads the ``html_uri`` of the
drift summary the task pushed, so the link exists exactly when an HTML report was written.
Importing this module is cheap: it is imported by DAG files through the drift operators.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

__all__ = ["DriftReportLink", "report_url"]

# Also SUMMARY_XCOM_KEY in guardflow_airflow.operators.drift, which imports this module.
_DRIFT_SUMMARY_KEY = "drift_summary"


def report_url(uri: str | None) -> str:
    """Turn where a report was written into something a browser can open.

    Args:
        uri: A URL (``https://...``), an object-store URI (``s3://...``, kept as is) or a local
            absolute path (turned into a ``file://`` URL).

    Returns:
        The link, or ``""`` when there is no report (Airflow shows the link disabled).
    """
    if not uri:
        return ""
    if "://" in uri:
        return uri
    path = PurePosixPath(uri)
    return path.as_uri() if path.is_absolute() else uri


class DriftReportLink(BaseOperatorLink):
    """The "Drift report" button of a drift check task: the HTML report it wrote, if any.

    Registered under ``extra-links`` in the provider info, and attached to
    :class:`~guardflow_airflow.operators.drift.DriftCheckOperator` and
    :class:`~guardflow_airflow.operators.drift.DriftCheckBranchOperator`.
    """

    name: ClassVar[str] = "Drift report"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """Return the URL of the HTML report of the task instance ``ti_key``.

        Args:
            operator: The drift check operator.
            ti_key: The task instance.

        Returns:
            The report's URL, or ``""`` when the task wrote none.
        """
        from airflow.sdk.execution_time.xcom import XCom

        summary = XCom.get_value(ti_key=ti_key, key=_DRIFT_SUMMARY_KEY)
        if not isinstance(summary, dict):
            return ""
        return report_url(summary.get("html_uri"))
