"""Names that moved between Airflow 3.1 and 3.3, imported from where this Airflow has them.

Airflow 3.3 exports the task exceptions, ``BaseBranchOperator`` and ``BranchMixIn`` from the Task
SDK (``airflow.sdk``); 3.1 keeps the exceptions in ``airflow.exceptions`` and the branch classes
in the standard provider. The SDK location is tried first, so 3.3 never touches deprecated paths.
"""

from __future__ import annotations

__all__ = [
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSkipException",
    "BaseBranchOperator",
    "BranchMixIn",
]

try:
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
    )
except ImportError:  # Airflow 3.1
    from airflow.exceptions import (  # type: ignore[assignment,no-redef]
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSkipException,
    )

try:
    from airflow.sdk import BaseBranchOperator, BranchMixIn
except ImportError:  # Airflow 3.1: the standard provider has them
    from airflow.providers.standard.operators.branch import (  # type: ignore[assignment,no-redef]
        BaseBranchOperator,
        BranchMixIn,
    )
