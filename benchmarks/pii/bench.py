"""bastion vs Presidio (NoOp NLP engine: pattern recognizers only) vs scrubadub on one
seeded, labelled corpus: per-type precision/recall/F1, micro/macro F1, throughput.

Run (peers live only in the benchmark venv; bastion is imported from ``src``)::

    python3 -m venv benchmarks/.venv-pii
    benchmarks/.venv-pii/bin/pip install presidio-analyzer==2.2.366 \\
        presidio-anonymizer==2.2.366 scrubadub==2.0.1 faker phonenumbers python-stdnum \\
        pydantic numpy pyarrow mimesis
    benchmarks/.venv-pii/bin/python benchmarks/pii/bench.py --seed 0

Scoring: a gold span is found when a prediction of the same type overlaps it; a
prediction that overlaps no gold span of its type is a false positive. Peer labels are
mapped onto bastion's entity names (a peer type with no counterpart is ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))
sys.path.insert(0, str(HERE))

from corpus import ENTITIES, Corpus  # noqa: E402

Span = tuple[int, int, str]

PRESIDIO_MAP = {
    "PERSON": "PERSON", "EMAIL_ADDRESS": "EMAIL_ADDRESS", "PHONE_NUMBER": "PHONE_NUMBER",
    "US_SSN": "US_SSN", "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN_CODE",
    "IP_ADDRESS": "IP_ADDRESS", "URL": "URL", "DATE_TIME": "DATE_TIME", "LOCATION": "LOCATION",
    "US_DRIVER_LICENSE": "US_DRIVER_LICENSE", "US_PASSPORT": "PASSPORT",
    "US_BANK_NUMBER": "BANK_ACCOUNT", "UK_NHS": "NATIONAL_ID", "MAC_ADDRESS": "MAC_ADDRESS",
    "MEDICAL_LICENSE": "MEDICAL_RECORD_NUMBER",
}  # fmt: skip
SCRUB_MAP = {
    "name": "PERSON", "email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER",
    "social_security_number": "US_SSN", "credit_card": "CREDIT_CARD", "url": "URL",
    "date_of_birth": "DATE_TIME", "postalcode": "ZIP_CODE", "address": "STREET_ADDRESS",
    "drivers_licence": "US_DRIVER_LICENSE", "vehicle_licence_plate": "LICENSE_PLATE",
    "location": "LOCATION",
}  # fmt: skip


def bastion_tool() -> Callable[[str], list[Span]]:
    from bastion.privacy.pii import RECOGNIZERS, analyze

    recognizers = [r for _, r in RECOGNIZERS.items()]
    return lambda text: [(d.start, d.end, d.entity) for d in analyze(text, recognizers=recognizers)]


def presidio_tool() -> Callable[[str], list[Span]]:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    engine = AnalyzerEngine(
        nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    )
    engine.analyze("warm up https://example.org", language="en")  # tldextract's first call

    def run(text: str) -> list[Span]:
        out = engine.analyze(text, language="en")  # Presidio's default threshold
        return [(r.start, r.end, PRESIDIO_MAP[r.entity_type]) for r in out
                if r.entity_type in PRESIDIO_MAP]  # fmt: skip

    return run


def scrubadub_tool() -> Callable[[str], list[Span]]:
    import scrubadub

    scrubber = scrubadub.Scrubber()

    def run(text: str) -> list[Span]:
        return [(f.beg, f.end, SCRUB_MAP[f.type]) for f in scrubber.iter_filth(text)
                if f.type in SCRUB_MAP]  # fmt: skip

    return run


def score(gold: list[list[Span]], pred: list[list[Span]]) -> dict[str, dict[str, float]]:
    tp, fn, fp = Counter[str](), Counter[str](), Counter[str]()
    for g_spans, p_spans in zip(gold, pred, strict=True):
        for gs, ge, gt in g_spans:
            hit = any(pt == gt and ps < ge and gs < pe for ps, pe, pt in p_spans)
            (tp if hit else fn)[gt] += 1
        for ps, pe, pt in p_spans:
            if not any(pt == gt and ps < ge and gs < pe for gs, ge, gt in g_spans):
                fp[pt] += 1
    per: dict[str, dict[str, float]] = {}
    for e in ENTITIES:
        p = tp[e] / (tp[e] + fp[e]) if tp[e] + fp[e] else 0.0
        r = tp[e] / (tp[e] + fn[e]) if tp[e] + fn[e] else 0.0
        per[e] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
                  "support": tp[e] + fn[e], "fp": fp[e]}  # fmt: skip
    t, n, f = sum(tp.values()), sum(fn.values()), sum(fp.values())
    mp, mr = t / (t + f) if t + f else 0.0, t / (t + n) if t + n else 0.0
    per["micro"] = {
        "precision": mp,
        "recall": mr,
        "f1": 2 * mp * mr / (mp + mr) if mp + mr else 0.0,
    }
    per["macro"] = {"f1": sum(per[e]["f1"] for e in ENTITIES) / len(ENTITIES)}
    return per


Cells = list[list[set[str]]]


class Clock:
    """Wall and CPU seconds of one timed block: on a shared, loaded machine the CPU time
    of this process is the fairer basis for a speed ratio."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def table_run(corpus: Corpus, tool: str) -> tuple[Clock, Cells]:
    """Each tool's table path: its clock, and the entity types found per cell."""
    rows, header = corpus.rows, corpus.header
    pred: Cells = [[set() for _ in header] for _ in rows]
    if tool == "bastion":
        import csv
        import tempfile

        from bastion.privacy.audit import audit

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.csv"
            with path.open("w", newline="") as fh:
                csv.writer(fh).writerows([header, *rows])
            with Clock() as clock:
                result = audit(path)
        for hit in result.hits:  # CSV records are line numbers; line 2 is row 0
            pred[int(hit.record) - 2][header.index(hit.field)].add(hit.entity)
        for c in result.columns:  # a confident column class covers every cell
            if c.entity is not None and c.confidence >= 0.5:
                for row in pred:
                    row[header.index(c.column)].add(c.entity)
        return clock, pred
    if tool == "presidio":
        from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        batch = BatchAnalyzerEngine(
            AnalyzerEngine(
                nlp_engine=NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
            )
        )
        columns = {h: [r[i] for r in rows] for i, h in enumerate(header)}
        with Clock() as clock:
            out = list(batch.analyze_dict(columns, language="en"))
        for res in out:
            col = header.index(res.key)
            for i, found in enumerate(res.recognizer_results):
                pred[i][col] |= {PRESIDIO_MAP[r.entity_type] for r in found
                                 if r.entity_type in PRESIDIO_MAP}  # fmt: skip
        return clock, pred
    import scrubadub

    scrubber = scrubadub.Scrubber()
    with Clock() as clock:
        for i, r in enumerate(rows):
            for j, cell in enumerate(r):
                pred[i][j] |= {SCRUB_MAP[f.type] for f in scrubber.iter_filth(cell)
                               if f.type in SCRUB_MAP}  # fmt: skip
    return clock, pred


def table_score(truth: list[list[str | None]], pred: Cells) -> dict[str, float]:
    """Cell-level micro P/R/F1: a PII cell is found when its type is among the predictions."""
    tp = fp = fn = 0
    for t_row, p_row in zip(truth, pred, strict=True):
        for t, p in zip(t_row, p_row, strict=True):
            if t is not None:
                tp += t in p
                fn += t not in p
            fp += len(p - {t})
    prec, rec = tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0
    return {
        "precision": prec,
        "recall": rec,
        "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--notes", type=int, default=400)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    corpus = Corpus(seed=args.seed, n_notes=args.notes, n_rows=args.rows)
    gold = [n.spans for n in corpus.notes]
    results: dict[str, object] = {"seed": args.seed, "notes": args.notes, "rows": args.rows}
    for name, make in (("bastion", bastion_tool), ("presidio-noop", presidio_tool),
                       ("scrubadub", scrubadub_tool)):  # fmt: skip
        tool = make()
        with Clock() as notes:
            pred = [tool(n.text) for n in corpus.notes]
        metrics = score(gold, pred)
        table, cells = table_run(corpus, name.split("-")[0])
        n_rows = len(corpus.rows)
        results[name] = {"metrics": metrics, "notes_per_s": len(gold) / notes.wall,
                         "notes_per_cpu_s": len(gold) / notes.cpu,
                         "table_rows_per_s": n_rows / table.wall,
                         "table_rows_per_cpu_s": n_rows / table.cpu,
                         "table_cells": table_score(corpus.truth, cells)}  # fmt: skip
        print(f"{name}: micro-F1 {metrics['micro']['f1']:.3f} macro-F1 "
              f"{metrics['macro']['f1']:.3f} {len(gold) / notes.cpu:.0f} notes/CPU-s "
              f"{n_rows / table.cpu:.0f} rows/CPU-s", file=sys.stderr)  # fmt: skip
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
