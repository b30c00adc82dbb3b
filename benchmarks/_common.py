"""Helpers shared by the benchmark scripts: timing, a plain-text table, and RESULTS.md."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["RESULTS", "append_results", "machine", "seconds", "table"]

RESULTS = Path(__file__).with_name("RESULTS.md")
_HEADER = """# Benchmark results

Appended by the scripts in this folder (`make bench`); each section is one run, newest last.
Numbers are wall-clock on the machine named in the section, model servers on 127.0.0.1.
"""


def seconds(fn: Callable[[], object]) -> float:
    """Run ``fn`` once and return its wall time in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a Markdown table (readable as plain text too)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def machine() -> str:
    """One line naming the machine, its load and the interpreter the numbers come from."""
    load = ""
    if hasattr(os, "getloadavg"):  # other processes on a 2-core box skew every number
        load = ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores{load}, "
        f"Python {platform.python_version()}"
    )


def append_results(title: str, body: str, path: Path = RESULTS) -> None:
    """Append a dated section to RESULTS.md, creating it with a header when missing."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    path.write_text(f"{text.rstrip()}\n\n## {title} ({stamp})\n\n{body.strip()}\n", "utf-8")
