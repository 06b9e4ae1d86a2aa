"""Cleanliness gate: duplicates, near duplicates, corrupt files, empty labels, mixed formats, leakage.

Near-duplicate search uses multi-index hashing over 64-bit hashes (:mod:`framework.data.dedup`),
so it grows near-linearly with the number of items rather than with the number of pairs.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from framework.data.checks import CheckContext, CheckResult, Finding
from framework.data.dedup import exact_groups, near_groups
from framework.data.fingerprints import DECODER_MODULES, Fingerprint, fingerprint
from framework.data.gates._base import at_most, gate_settings, override
from framework.data.parallel import ItemPool
from framework.data.records import DataBundle, Record

CORRUPT_REASONS = frozenset({"missing_file", "undecodable"})
_RADIUS_KEY = {"image": "image_hamming", "audio": "audio_hamming", "text": "text_hamming"}


def fingerprint_all(records: list[Record], pool: ItemPool | None = None) -> list[Fingerprint]:
    """Fingerprints of every record, in order: on ``pool`` (the audit's processes or Dask
    cluster), else in this process with a progress bar on a terminal."""
    if pool is not None and (pool.cfg.engine != "processes" or (pool.workers > 1 and len(records) >= pool.cfg.min_items)):
        return pool.map(fingerprint, records, preload=DECODER_MODULES)
    from tqdm.auto import tqdm

    return [fingerprint(r) for r in tqdm(records, desc="fingerprinting", unit="item", disable=None, leave=False)]


def _components(n: int, *labelings: np.ndarray) -> np.ndarray:
    """Connected components of items linked by sharing a label in any of ``labelings``."""
    rows, cols, offset = [], [], n
    for labels in labelings:
        rows.append(np.arange(n))
        cols.append(labels + offset)
        offset += int(labels.max(initial=-1)) + 1
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(rows_a.size), (rows_a, cols_a)), shape=(offset, offset))
    return connected_components(graph, directed=False)[1][:n]


def near_labels(fps: list[Fingerprint], settings: dict[str, Any]) -> np.ndarray:
    """Near-duplicate component per item, searched per kind with that kind's Hamming radius."""
    labels = np.arange(len(fps))  # alone unless linked
    next_label = len(fps)
    for kind, key in _RADIUS_KEY.items():
        idx = [i for i, fp in enumerate(fps) if fp.kind == kind and fp.near is not None]
        if len(idx) < 2:
            continue
        groups = near_groups([fps[i].near for i in idx], int(settings[key]))
        labels[idx] = groups + next_label
        next_label += int(groups.max()) + 1
    return labels


def groups_of(labels: np.ndarray) -> list[np.ndarray]:
    """Index arrays of every label shared by two or more items."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [g for g in np.split(order, bounds) if g.size > 1]


def within_split(groups: list[np.ndarray], splits: list[str]) -> list[np.ndarray]:
    """Each group cut by split, keeping parts of two or more (cross-split copies are leakage)."""
    out = []
    for g in groups:
        by_split: dict[str, list[int]] = defaultdict(list)
        for i in g:
            by_split[splits[i]].append(int(i))
        out += [np.array(part) for part in by_split.values() if len(part) > 1]
    return out


def _extra_copies(groups: list[np.ndarray]) -> int:
    """Copies beyond the first in each group."""
    return sum(g.size - 1 for g in groups)


class CleanlinessGate:
    """Finds duplicates, near duplicates, corrupt files, empty labels, mixed formats and leakage.

    Settings (``data.gates.cleanliness``): ``max_duplicate_fraction``,
    ``max_near_duplicate_fraction``, ``max_leaked``, ``max_corrupt_fraction``,
    ``max_empty_label_fraction``, ``near_duplicates`` and the Hamming radii ``image_hamming``,
    ``audio_hamming``, ``text_hamming``. Mixed formats are reported, never failed.
    """

    name = "cleanliness"

    def run(self, data: DataBundle, ctx: CheckContext) -> CheckResult:
        """Fingerprint every record, group duplicates, and compare the fractions with the limits."""
        s = gate_settings(self.name, ctx.settings)
        records = data.records()
        t0 = time.perf_counter()
        fps = fingerprint_all(records, ctx.pool)
        t1 = time.perf_counter()
        findings, measured = [], {}
        corrupt = [i for i, fp in enumerate(fps) if fp.error]
        findings += [Finding("corrupt", (records[i].id,), f"{records[i].source}: {fps[i].error}") for i in corrupt]
        quarantined_bad = [q for q in data.quarantine if q.reason in CORRUPT_REASONS]
        findings += [Finding("corrupt", (q.record_id or q.source,), f"quarantined ({q.reason}): {q.detail}")
                     for q in quarantined_bad]
        ok = [i for i in range(len(records)) if not fps[i].error]
        recs, good = [records[i] for i in ok], [fps[i] for i in ok]
        dup_findings, n_dup, n_near, leaks = self._duplicates(recs, good, s)
        findings += dup_findings + leaks
        t2 = time.perf_counter()
        empty = [r for r in records if r.label is not None and not str(r.label).strip()]
        findings += [Finding("empty_label", (r.id,), f"{r.source}: empty label/transcript") for r in empty]
        findings += self._format_findings(good)
        n_items = len(records) + len(data.quarantine)
        labelled = sum(r.label is not None for r in records)
        checks = {
            "max_duplicate_fraction": at_most("exact-duplicate fraction", n_dup / max(len(recs), 1),
                                              float(s["max_duplicate_fraction"])),
            "max_near_duplicate_fraction": at_most("near-duplicate fraction", n_near / max(len(recs), 1),
                                                   float(s["max_near_duplicate_fraction"])),
            "max_leaked": at_most("leaked eval items", len(leaks), int(s["max_leaked"]), "{:.0f}"),
            "max_corrupt_fraction": at_most("corrupt fraction", (len(corrupt) + len(quarantined_bad)) / max(n_items, 1),
                                            float(s["max_corrupt_fraction"])),
            "max_empty_label_fraction": at_most("empty-label fraction", len(empty) / max(labelled, 1),
                                                float(s["max_empty_label_fraction"])),
        }
        measured.update(items=n_items, exact_duplicates=n_dup, near_duplicates=n_near, leaked=len(leaks),
                        corrupt=len(corrupt) + len(quarantined_bad), empty_labels=len(empty),
                        seconds={"fingerprint": t1 - t0, "duplicate_search": t2 - t1})
        failed = {key: text for key, (ok_, text) in checks.items() if not ok_}
        summary = "; ".join(failed.values()) if failed else "; ".join(text for _, text in checks.values())
        return CheckResult(self.name, not failed, summary=summary, measured=measured, findings=findings,
                           override=override(self.name, *failed))

    def _duplicates(self, recs: list[Record], fps: list[Fingerprint], s: dict[str, Any]) -> tuple[list[Finding], int, int, list[Finding]]:
        """Duplicate and near-duplicate findings within splits, their counts, and leaks across splits."""
        if not fps:
            return [], 0, 0, []
        splits = [r.split for r in recs]
        exact = exact_groups([fp.exact for fp in fps])
        near = near_labels(fps, s) if s["near_duplicates"] else np.arange(len(fps))
        all_g = groups_of(_components(len(fps), exact, near))
        exact_g, near_g = within_split(groups_of(exact), splits), within_split(all_g, splits)
        n_dup = _extra_copies(exact_g)
        exact_sets = {frozenset(g.tolist()) for g in exact_g}
        findings = self._group_findings(exact_g, recs, "exact_duplicate")
        findings += self._group_findings([g for g in near_g if frozenset(g.tolist()) not in exact_sets], recs, "near_duplicate")
        return findings, n_dup, _extra_copies(near_g) - n_dup, self._leaks(all_g, recs, exact)

    @staticmethod
    def _group_findings(groups: list[np.ndarray], recs: list[Record], kind: str) -> list[Finding]:
        return [Finding(kind, tuple(recs[i].id for i in g), f"{g.size} items: " + ", ".join(recs[i].source for i in g[:5]))
                for g in groups]

    @staticmethod
    def _leaks(groups: list[np.ndarray], recs: list[Record], exact: np.ndarray) -> list[Finding]:
        """One finding per non-train item whose (near-)duplicate group holds a train item."""
        out = []
        for g in groups:
            train = [i for i in g if recs[i].split == "train"]
            if not train:
                continue
            for i in g:
                if recs[i].split != "train":
                    how = "identical" if any(exact[i] == exact[t] for t in train) else "near-identical"
                    out.append(Finding("leak", (recs[train[0]].id, recs[i].id),
                                       f"{recs[i].split} item {recs[i].source} is {how} to train item {recs[train[0]].source}"))
        return out

    @staticmethod
    def _format_findings(fps: list[Fingerprint]) -> list[Finding]:
        by_kind: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for fp in fps:
            for key in ("mode", "format", "extension", "samplerate", "channels"):
                if key in fp.meta:
                    by_kind[fp.kind][key][str(fp.meta[key])] += 1
        return [Finding("mixed_format", (), f"{kind} {key}: {dict(counts)}")
                for kind, keys in by_kind.items() for key, counts in keys.items() if len(counts) > 1]
