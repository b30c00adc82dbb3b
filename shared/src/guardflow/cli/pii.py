"""``guardflow pii``: detect, mask or scan personal data in files.

- ``guardflow pii detect INPUT --text-field FIELD [--id-field FIELD] --output OUTPUT``: one JSON
  line per input line, ``{"id": ..., "entities": [{"type", "start", "end", "score"}]}``, offsets
  in Unicode code points.
- ``guardflow pii mask INPUT OUTPUT --policy POLICY.yaml``: mask a Parquet, CSV or JSONL file.
- ``guardflow pii scan INPUT --policy POLICY.yaml``: count PII; exit 1 where the policy does not
  allow it.

Exit codes: 0 ok, 1 PII found where the policy does not allow it (``scan``), 2 bad input or
configuration. Vault errors keep the codes of ``guardflow secrets``: 3 unreachable or sealed,
4 login failed or permission denied. Nothing printed ever holds a detected value.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from guardflow.errors import (
    ConfigurationError,
    GuardflowError,
    InputDataError,
    VaultAuthError,
    VaultPermissionError,
    VaultSealedError,
    VaultUnreachableError,
)
from guardflow.identity import RunIdentity

if TYPE_CHECKING:
    from guardflow.pii import Detector, PIIPolicy, PIIReport
    from guardflow.secrets import VaultClient

__all__ = ["register", "run_detect", "run_mask", "run_scan", "violations"]

# Lines of JSONL sent to the detector at once: big enough for the vectorised pass, small enough
# to keep memory bounded on files of any size.
BATCH_LINES = 8192
_VAULT_ERRORS = (VaultAuthError, VaultPermissionError, VaultSealedError, VaultUnreachableError)
# A lone surrogate (a JSON "\ud800" escape with no pair; json.loads pairs the valid ones): it
# cannot be encoded as UTF-8, so an id holding one is written back as an escape.
_SURROGATE = re.compile("[\ud800-\udfff]")
_BOM = b"\xef\xbb\xbf"


_WORKERS_HELP = "processes that detect in free text, this one included (default 1)"


def _workers(value: str) -> int:
    """``--workers``: a whole number of processes, at least 1."""
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {value!r}")
    return workers


def _score(value: str) -> float:
    """``--min-score``: a number from 0 to 1, the bounds of the policy's ``min_score``."""
    try:
        score = float(value)
    except ValueError:
        score = math.nan
    if not 0.0 <= score <= 1.0:  # also false for nan
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {value!r}")
    return score


def register(sub: Any) -> None:
    """Add the ``pii`` subcommand (``detect``, ``mask``, ``scan``) to the CLI's subparsers."""
    pii: argparse.ArgumentParser = sub.add_parser(
        "pii",
        help="detect, mask or scan personal data (PII) in files",
        description=(
            "Detect, mask or scan personal data. Exit code 0: ok, 1: PII found where the "
            "policy does not allow it (scan), 2: bad input or configuration."
        ),
    )
    actions = pii.add_subparsers(dest="pii_command", required=True, metavar="ACTION")

    p = actions.add_parser(
        "detect",
        help="list the entities found in one text field of a JSONL file",
        description=(
            "Read INPUT (JSON Lines), detect PII in --text-field of each record and write one "
            'line per record to OUTPUT: {"id": ..., "entities": [{"type", "start", "end", '
            '"score"}]}, offsets in Unicode code points (end exclusive). "-" reads stdin or '
            "writes stdout."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="JSON Lines file (or - for stdin)")
    p.add_argument("--text-field", required=True, help="field holding the text to scan")
    p.add_argument(
        "--id-field",
        help="field copied to each output line's id (default: 'id' when present, else the "
        "record's 0-based line number)",
    )
    p.add_argument("--output", required=True, help="JSON Lines output (or - for stdout)")
    p.add_argument("--entities", help="comma-separated entity types (default: all pattern types)")
    p.add_argument("--min-score", type=_score, default=0.5, help="drop entities below (0.5)")
    p.add_argument("--no-context", action="store_true", help="ignore context words")
    p.add_argument("--ner", action="store_true", help="add PERSON/LOCATION/ORGANIZATION (ner)")
    p.set_defaults(handler=run_detect)

    m = actions.add_parser(
        "mask",
        help="mask a Parquet, CSV or JSONL file according to a policy",
        description=(
            "Mask INPUT into OUTPUT (Parquet, CSV or JSONL, by extension) as POLICY.yaml says "
            "and print the counts per column and entity type. When the policy tokenizes or "
            "reads its hash key from Vault, the server and credentials come from VAULT_ADDR "
            "and VAULT_TOKEN (or VAULT_ROLE_ID and VAULT_SECRET_ID)."
        ),
    )
    m.add_argument("input", metavar="INPUT", help="input file or URI")
    m.add_argument("output", metavar="OUTPUT", help="output file or URI (written atomically)")
    m.add_argument("--policy", required=True, help="PII policy YAML")
    m.add_argument("--format", choices=["text", "json"], default="text", help="report format")
    m.add_argument("--workers", type=_workers, default=1, help=_WORKERS_HELP)
    m.set_defaults(handler=run_mask)

    s = actions.add_parser(
        "scan",
        help="count PII in a file; exit 1 where the policy does not allow it",
        description=(
            "Scan INPUT (Parquet, CSV or JSONL) and print the counts per column and entity "
            "type. Exit code 1 when a column holds a type its policy 'allow' list does not "
            "name."
        ),
    )
    s.add_argument("input", metavar="INPUT", help="input file or URI")
    s.add_argument("--policy", required=True, help="PII policy YAML")
    s.add_argument("--format", choices=["text", "json"], default="text", help="report format")
    s.add_argument("--workers", type=_workers, default=1, help=_WORKERS_HELP)
    s.set_defaults(handler=run_scan)


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Let Vault errors reach the CLI's own mapping (3, 4); every other failure is exit 2."""
    try:
        yield
    except _VAULT_ERRORS:
        raise
    except GuardflowError as exc:
        # 1 means "PII found": a failure to scan must never be mistaken for it.
        raise _Exit(2, str(exc)) from None
    except OSError as exc:
        raise _Exit(2, f"{type(exc).__name__}: {exc.strerror or exc}") from None


class _Exit(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _run(body: Any, args: argparse.Namespace) -> int:
    try:
        with _exit_codes():
            code: int = body(args)
            return code
    except _Exit as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


# -- detect ---------------------------------------------------------------------------------


def run_detect(args: argparse.Namespace) -> int:
    """Execute ``guardflow pii detect``; write one JSON line per input record.

    Args:
        args: The parsed arguments.

    Returns:
        0, or 2 for unreadable input, a bad line or a bad option.
    """
    return _run(_detect, args)


def _detector(args: argparse.Namespace) -> Detector:
    from guardflow.pii import Detector, EntityType

    entities = None
    if args.entities:
        names = [n.strip().upper() for n in args.entities.split(",") if n.strip()]
        known = {t.value for t in EntityType}
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise ConfigurationError(
                f"--entities: unknown entity type(s) {unknown}; choose from {sorted(known)}"
            )
        entities = [EntityType(n) for n in names]
    return Detector(entities, context=not args.no_context, ner=args.ner, min_score=args.min_score)


def _detect(args: argparse.Namespace) -> int:
    detector = _detector(args)
    with _open_input(args.input) as source, _atomic_output(args.output) as sink:
        batch: list[tuple[Any, str | None]] = []
        for number, record in _records(source):
            batch.append((_record_id(record, args.id_field, number), _text(record, args)))
            if len(batch) >= BATCH_LINES:
                _write_batch(detector, batch, sink)
                batch = []
        _write_batch(detector, batch, sink)
    return 0


def _records(source: IO[bytes]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    # Bytes, decoded line by line: a bad byte is reported with its line number (a text stream
    # decodes whole blocks), and the message never quotes the content.
    for number, raw in enumerate(source, start=1):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputDataError(f"line {number} of the input is not valid UTF-8") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise InputDataError(f"line {number} of the input is not valid JSON") from None
        if not isinstance(record, dict):
            raise InputDataError(f"line {number} of the input is not a JSON object")
        yield number, record


def _record_id(record: Mapping[str, Any], id_field: str | None, number: int) -> Any:
    if id_field is None:
        return record.get("id", number - 1)
    if id_field not in record:
        raise InputDataError(f"line {number} of the input has no {id_field!r} field (--id-field)")
    return record[id_field]


def _text(record: Mapping[str, Any], args: argparse.Namespace) -> str | None:
    value = record.get(args.text_field)
    # Missing, null and non-text values have no entities; the record still gets its line.
    return value if isinstance(value, str) else None


def _write_batch(detector: Detector, batch: list[tuple[Any, str | None]], sink: IO[str]) -> None:
    if not batch:
        return
    found = detector.detect_many([text for _, text in batch])
    for (record_id, _), entities in zip(batch, found, strict=True):
        line = {
            "id": record_id,
            "entities": [
                {"type": e.type.value, "start": e.start, "end": e.end, "score": float(e.score)}
                for e in entities
            ],
        }
        text = json.dumps(line, ensure_ascii=False)
        if _SURROGATE.search(text):  # a lone surrogate in the id: keep it as a JSON escape
            text = json.dumps(line)
        sink.write(text + "\n")


@contextmanager
def _open_input(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    if not Path(path).is_file():
        raise InputDataError(f"input file {path!r} does not exist")
    with open(path, "rb") as fh:
        yield fh


@contextmanager
def _atomic_output(path: str) -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path`` and rename it: no half-written output."""
    if path == "-":
        yield sys.stdout
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- mask and scan --------------------------------------------------------------------------


def violations(report: PIIReport) -> dict[str, dict[str, int]]:
    """Return the report's violations without the zero counts.

    Args:
        report: A scan report.

    Returns:
        ``{column: {entity type: count}}`` for the PII found where the policy's ``allow`` does
        not permit it; empty when there is none.
    """
    found = {
        column: {etype: n for etype, n in sorted(types.items()) if n}
        for column, types in sorted(report.violations.items())
    }
    return {column: types for column, types in found.items() if types}


def format_counts(report: PIIReport) -> str:
    """Render a report's counts as an aligned text table with a summary line.

    Args:
        report: The PII report.

    Returns:
        The table (column, entity type, count); counts only, never values.
    """
    rows = [
        (column, etype, str(n))
        for column, counts in sorted(report.counts.items())
        for etype, n in sorted(counts.items())
        if n
    ]
    lines = [
        f"rows scanned: {report.rows_scanned}, rows touched: {report.rows_touched}, "
        f"entities: {report.total}"
    ]
    if rows:
        header = ("column", "entity type", "count")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
        for row in [header, *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _policy(path: str) -> PIIPolicy:
    from guardflow.pii import PIIPolicy

    return PIIPolicy.from_yaml(path)


def _vault(policy: PIIPolicy) -> VaultClient | None:
    if not policy.needs_vault():
        return None
    from guardflow.secrets import VaultClient, VaultConfig

    return VaultClient(VaultConfig.from_env())


def _print(report: PIIReport, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_counts(report))


def run_mask(args: argparse.Namespace) -> int:
    """Execute ``guardflow pii mask``; print the report's counts.

    Args:
        args: The parsed arguments.

    Returns:
        0, or 2 for a bad policy or input (3/4 for Vault failures, through the CLI's mapping).
    """
    return _run(_mask, args)


def _mask(args: argparse.Namespace) -> int:
    from guardflow.pii import mask_file

    policy = _policy(args.policy)
    vault = _vault(policy)
    try:
        report = mask_file(
            args.input,
            args.output,
            policy,
            vault=vault,
            identity=RunIdentity(orchestrator="cli", pipeline="guardflow-cli", task_id="pii-mask"),
            workers=args.workers,
        )
    finally:
        if vault is not None:
            vault.close()
    _print(report, args.format)
    return 0


def run_scan(args: argparse.Namespace) -> int:
    """Execute ``guardflow pii scan``; print the counts and the columns breaking the policy.

    Args:
        args: The parsed arguments.

    Returns:
        0 when every column holds only what the policy allows, 1 otherwise, 2 for a bad policy
        or input.
    """
    return _run(_scan, args)


def _scan(args: argparse.Namespace) -> int:
    from guardflow.pii import scan_file

    policy = _policy(args.policy)
    report = scan_file(
        args.input,
        policy,
        identity=RunIdentity(orchestrator="cli", pipeline="guardflow-cli", task_id="pii-scan"),
        workers=args.workers,
    )
    bad = violations(report)
    _print(report, args.format)
    for column, types in bad.items():
        print(f"PII not allowed in column {column!r}: {', '.join(types)}", file=sys.stderr)
    return 1 if bad else 0
