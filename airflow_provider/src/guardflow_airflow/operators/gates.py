"""Human approval gates as deferrable Airflow tasks: approve, reject, or choose a branch.

:class:`ApprovalGateOperator` opens a :class:`guardflow.gates.Gate` for the task (its id comes
from the DAG, run, task and map index, so a retried or restarted task finds the gate it opened
and never notifies twice), then defers to
:class:`~guardflow_airflow.triggers.gates.GateTrigger`: no worker slot is held while reviewers
decide by signed link (Slack, Teams, email, webhook), on the review page or with the CLI. When
the gate closes the task resumes and returns the small outcome dict (ids, option, reviewer names,
counts; never data) as its XCom. :class:`GateBranchOperator` follows downstream tasks by option.

What reviewers see is masked by the gate service; the operator also masks its rendered
``subject``, ``body``, ``context`` and ``items`` before Airflow stores them as rendered fields,
so raw PII never reaches Airflow's metadata database or UI.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from airflow.sdk import BaseOperator

from guardflow_airflow._compat import BranchMixIn
from guardflow_airflow._runtime import guardflow_error_boundary, run_identity

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from guardflow.gates.models import GateOutcome, GateRecord
    from guardflow.gates.service import Gate

__all__ = ["OUTCOME_XCOM_KEY", "ApprovalGateOperator", "GateBranchOperator"]

OUTCOME_XCOM_KEY = "gate_outcome"
OnReject = Literal["skip", "fail"]

# The fields reviewers see; masked in place after rendering (the raw values stay in memory only).
_SHOWN = ("subject", "body", "context", "items")


def _check_on_reject(value: str) -> OnReject:
    if value not in ("skip", "fail"):
        raise ValueError(f"on_reject must be 'skip' or 'fail', not {value!r}")
    return "skip" if value == "skip" else "fail"


class ApprovalGateOperator(BaseOperator):
    """Wait, without holding a worker slot, for humans to approve or reject the run.

    ``execute`` opens the gate (or finds the one this task instance already opened), announces
    it once through the policy's notifiers, and defers until the gate store says it is resolved
    or expired; escalations wake the task up in between to notify the next group. Then:

    - approved (including ``on_timeout="approve"``): returns the outcome dict (XCom
      ``return_value``);
    - rejected (including ``on_timeout="reject"``): ``on_reject="skip"`` skips the task, and so
      its downstream tasks with the default trigger rule; ``"fail"`` fails it at once (no
      retries) with :class:`~guardflow.errors.GateRejectedError`'s message;
    - expired with ``on_timeout="fail"``: fails with
      :class:`~guardflow.errors.GateTimeoutError`'s message.

    The outcome dict is also pushed under the XCom key ``gate_outcome`` in every case, so a
    skipped or failed gate still shows who decided what.

    Args:
        subject: One-line subject (also part of the gate id). Templated.
        body: Markdown body shown to reviewers. Templated.
        context: Data shown to reviewers (masked). Templated.
        items: Items to review, e.g. low-confidence predictions (masked; routed by
            ``policy.routing``). Templated.
        policy: A :class:`guardflow.gates.GatePolicy`, its fields as a dict, or the path of a
            YAML file (a path may be a Jinja template). Notifier credentials belong in
            ``vault://`` references or a YAML file, not in a templated dict.
        store_url: SQLAlchemy URL of the gate store (default: the policy's ``store_url``, else
            ``$GUARDFLOW_GATES_DB``, else ``~/.guardflow/gates.db``). It must hold no password:
            the trigger's arguments are stored in Airflow's database (for PostgreSQL give the
            password with ``PGPASSWORD`` or ``~/.pgpass`` on workers and the triggerer). May be
            a Jinja template.
        vault_conn_id: A ``vault`` / ``guardflow_vault`` connection, to resolve ``vault://``
            references in the policy (notifier webhooks, SMTP password, signing key).
        on_reject: ``"skip"`` (default) or ``"fail"``.
        key: Tells several gates with the same subject in one task apart.
        poll_interval: Seconds between the trigger's reads of the store; default the policy's
            ``poll_interval_s``.
        **kwargs: Passed to :class:`airflow.sdk.BaseOperator`.

    Raises:
        ValueError: ``on_reject`` is not ``skip`` or ``fail`` (when the DAG is parsed).

    Examples:
        >>> gate = ApprovalGateOperator(
        ...     task_id="approve_delivery",
        ...     subject="Deliver {{ ds }} scores?",
        ...     body="**{{ ti.xcom_pull('score')['rows'] }}** rows scored.",
        ...     policy="/opt/airflow/policies/delivery_gate.yaml",
        ...     on_reject="fail",
        ... )  # doctest: +SKIP
    """

    template_fields: Sequence[str] = _SHOWN
    ui_color = "#e0e7ff"

    def __init__(
        self,
        *,
        subject: str,
        body: str = "",
        context: Mapping[str, Any] | None = None,
        items: Sequence[Mapping[str, Any]] | None = None,
        policy: Any = None,
        store_url: str | None = None,
        vault_conn_id: str | None = None,
        on_reject: OnReject = "skip",
        key: str = "",
        poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.subject = subject
        self.body = body
        self.context = context
        self.items = items
        self.policy = policy
        self.store_url = store_url
        self.vault_conn_id = vault_conn_id
        self.on_reject = _check_on_reject(on_reject)
        self.key = key
        if poll_interval is not None and not poll_interval > 0:
            raise ValueError("poll_interval must be a positive number of seconds")
        self.poll_interval = poll_interval
        self._unmasked: dict[str, Any] = {}
        self._vault_hook: Any = None

    # -- rendering ------------------------------------------------------------------------------

    def render_template_fields(
        self, context: Context, jinja_env: jinja2.Environment | None = None
    ) -> None:
        """Render the templated fields, then mask what Airflow will store as rendered fields.

        A string ``policy`` or ``store_url`` is rendered too, but is not a rendered field (a
        policy dict may hold notifier credentials, so it is never rendered or stored).

        Args:
            context: The task context.
            jinja_env: The DAG's Jinja environment.
        """
        super().render_template_fields(context, jinja_env)
        env = jinja_env or self.get_template_env()
        if isinstance(self.policy, str):
            self.policy = self.render_template(self.policy, context, env)
        if isinstance(self.store_url, str):
            self.store_url = self.render_template(self.store_url, context, env)
        from guardflow.gates._masking import mask_value

        self._unmasked = {name: getattr(self, name) for name in _SHOWN}
        for name in _SHOWN:
            setattr(self, name, mask_value(getattr(self, name)))

    def _shown(self, name: str) -> Any:
        return self._unmasked.get(name, getattr(self, name))

    # -- the gate -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _closing(self) -> Iterator[None]:
        """Close the Vault client (lease renewal) when the task defers, returns or fails."""
        try:
            yield
        finally:
            hook, self._vault_hook = self._vault_hook, None
            if hook is not None:
                hook.close()

    def _gate(self) -> tuple[Gate, str]:
        """Build the gate service and return it with the (password-free) store URL."""
        from guardflow.gates.service import Gate
        from guardflow_airflow.triggers.gates import check_store_url

        vault = None
        if self.vault_conn_id:
            from guardflow_airflow.hooks.vault import VaultHook

            self._vault_hook = VaultHook(self.vault_conn_id)
            vault = self._vault_hook.get_client()
        from guardflow.gates.models import GatePolicy

        policy = GatePolicy.load(
            dict(self.policy) if isinstance(self.policy, Mapping) else self.policy
        )
        # Checked before the store is built: the URL goes into the trigger's stored arguments.
        configured = self.store_url or policy.store_url or os.environ.get("GUARDFLOW_GATES_DB")
        if configured:
            check_store_url(configured)
        gate = Gate(policy, store_url=self.store_url or None, vault=vault)
        url = gate.store.url
        check_store_url(url)
        return gate, url

    def execute(self, context: Context) -> Any:
        """Open the gate and defer until it closes (or finish at once if it already has).

        Returns:
            The outcome dict (:meth:`guardflow.gates.GateOutcome.to_dict`) when the gate was
            already approved, e.g. by the routing rule or before a restart.

        Raises:
            TaskDeferred: The gate is pending (Airflow defers the task to the trigger).
            AirflowSkipException: Rejected with ``on_reject="skip"``.
            AirflowFailException: Rejected with ``on_reject="fail"``, expired with
                ``on_timeout="fail"``, or a non-retryable error (bad policy, store URL).
        """
        with guardflow_error_boundary(), self._closing():
            gate, url = self._gate()
            record = gate.open(
                identity=run_identity(context),
                subject=str(self._shown("subject")),
                body=str(self._shown("body") or ""),
                context=self._shown("context"),
                items=self._shown("items"),
                key=self.key,
            )
            self.log.info(
                "Gate %s is %s (%d item(s) to review, %d passed by routing)",
                record.id,
                record.status.value,
                record.item_count,
                record.passed_count,
            )
            return self._resume(context, gate, url, record)

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> Any:
        """Resume after the trigger fired: finish if the gate closed, else defer again.

        Args:
            context: The task context.
            event: The trigger's payload: ``gate_id`` and ``status``.

        Returns:
            What :meth:`execute` returns once the gate is closed.

        Raises:
            TaskDeferred: The gate is still pending (an escalation was due).
            AirflowSkipException: See :meth:`execute`.
            AirflowFailException: See :meth:`execute`.
        """
        with guardflow_error_boundary(), self._closing():
            gate, url = self._gate()
            record = gate.poll(str(event["gate_id"]))
            return self._resume(context, gate, url, record)

    def _resume(self, context: Context, gate: Gate, url: str, record: GateRecord) -> Any:
        if record.is_open:
            self._defer(gate, url, record)
        outcome = gate.outcome(record)
        data = outcome.to_dict()
        context["ti"].xcom_push(key=OUTCOME_XCOM_KEY, value=data)
        self.log.info(
            "Gate %s %s: outcome %s via %s, votes %s",
            record.id,
            record.status.value,
            outcome.outcome,
            outcome.channel,
            outcome.votes,
        )
        return self._finish(context, record, outcome, data)

    def _defer(self, gate: Gate, url: str, record: GateRecord) -> NoReturn:
        from guardflow_airflow.triggers.gates import GateTrigger

        wake = gate.next_wakeup(record, now=datetime.now(timezone.utc))
        interval = self.poll_interval or record.policy.poll_interval_s
        self.log.info(
            "Waiting for reviewers of gate %s (%s); the worker slot is released",
            record.id,
            f"next wake-up {wake.isoformat()}" if wake else "no expiry",
        )
        self.defer(
            trigger=GateTrigger(
                gate_id=record.id,
                store_url=url,
                poll_interval=interval,
                wake_at=wake.isoformat() if wake else None,
            ),
            method_name="execute_complete",
            timeout=None,
        )

    def _finish(
        self, context: Context, record: GateRecord, outcome: GateOutcome, data: dict[str, Any]
    ) -> Any:
        self._check_closed(record, outcome)
        return data

    def _check_closed(self, record: GateRecord, outcome: GateOutcome) -> None:
        """Raise for an expired (``fail``) or rejected gate; return when it was approved."""
        from guardflow.errors import GateRejectedError, GateTimeoutError
        from guardflow_airflow._compat import AirflowSkipException

        if outcome.outcome is None:
            raise GateTimeoutError(
                f"gate {record.id} expired without a decision and its on_timeout action is "
                "'fail'; open a new run, or set a longer expires_after_s",
                gate_id=record.id,
            )
        if outcome.approved:
            return
        how = "on timeout" if outcome.timed_out else f"via {outcome.channel}"
        message = (
            f"gate {record.id} was rejected ({outcome.outcome!r} {how}, "
            f"{len(outcome.decided_by)} reviewer(s))"
        )
        if self.on_reject == "skip":
            raise AirflowSkipException(f"{message} (on_reject='skip': downstream tasks skip)")
        raise GateRejectedError(message, gate_id=record.id)


class GateBranchOperator(ApprovalGateOperator, BranchMixIn):
    """A gate whose reviewers choose which downstream tasks run.

    Same gate, deferral and outcome as :class:`ApprovalGateOperator`; when the gate closes the
    option it resolved to is looked up in ``options_mapping`` and those task (or task group) ids
    run while the other direct downstream tasks are skipped. An option missing from the mapping
    is taken as a task id itself, except a reject option, which follows ``on_reject`` (skip or
    fail) like :class:`ApprovalGateOperator`. A gate expired with ``on_timeout="fail"`` fails the
    task. The outcome dict goes to XCom under ``gate_outcome`` (Airflow ends a branch that skips
    tasks before it pushes a ``return_value``).

    Args:
        options_mapping: Option to task id(s), e.g. ``{"approve": "deliver", "reject":
            "quarantine"}``; named options of the policy (``options: [retrain, ship, hold]``)
            work the same way.
        **kwargs: The arguments of :class:`ApprovalGateOperator`.

    Raises:
        ValueError: A mapping value is not a task id or list of task ids, or (when the policy is
            given as an object or dict) a key is not one of the policy's options.

    Examples:
        >>> choose = GateBranchOperator(
        ...     task_id="review_scores",
        ...     subject="Scores for {{ ds }}",
        ...     policy={"options": ["approve", "reject"], "assignees": ["group:ml"],
        ...             "groups": {"ml": ["ana", "bo"]}},
        ...     options_mapping={"approve": "deliver", "reject": "quarantine"},
        ... )  # doctest: +SKIP
    """

    inherits_from_skipmixin = True

    def __init__(
        self, *, options_mapping: Mapping[str, str | Sequence[str]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        mapping: dict[str, list[str]] = {}
        for option, targets in dict(options_mapping).items():
            ids = [targets] if isinstance(targets, str) else list(targets)
            if not ids or not all(isinstance(t, str) and t for t in ids):
                raise ValueError(
                    f"options_mapping[{option!r}] must be a task id or a list of task ids"
                )
            mapping[str(option)] = ids
        self.options_mapping = mapping
        if self.policy is not None and not isinstance(self.policy, (str, os.PathLike)):
            self._check_mapping(self.policy)

    def _check_mapping(self, policy: Any) -> None:
        from guardflow.errors import ConfigurationError
        from guardflow.gates.models import GatePolicy

        try:
            loaded = GatePolicy.load(dict(policy) if isinstance(policy, Mapping) else policy)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        unknown = sorted(set(self.options_mapping) - set(loaded.options))
        if unknown:
            raise ValueError(
                f"options_mapping names options the policy does not offer: {', '.join(unknown)}"
            )

    def _finish(
        self, context: Context, record: GateRecord, outcome: GateOutcome, data: dict[str, Any]
    ) -> Any:
        chosen = outcome.outcome
        if chosen is None or chosen not in self.options_mapping:
            self._check_closed(record, outcome)
        branches = self.options_mapping.get(chosen or "", [chosen] if chosen else [])
        return self.do_branch(context, branches)
