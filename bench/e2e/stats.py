"""The pure arithmetic of the end-to-end benchmark: percentiles, per-stage spans from workflow history, and the
top functions of a py-spy raw (collapsed) profile. No I/O, so it can be read and checked on its own."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: the span from the CRM's activation to the hub's first transition: CDC webhook → crm_connector → Kafka → hub
INGEST = "ingest (CRM → hub)"
QUANTILES = (0.5, 0.9, 0.99)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the value below which q of the samples fall); nan for no samples."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, p50, p90, p99, max and mean of `values` (seconds)."""
    out = {"n": float(len(values))}
    for q in QUANTILES:
        out[f"p{round(q * 100)}"] = percentile(values, q)
    out["max"] = max(values) if values else math.nan
    out["mean"] = sum(values) / len(values) if values else math.nan
    return out


@dataclass
class Instance:
    """One activation workflow instance: when the CRM activated its contract and its history rows in order."""

    contract_id: str
    status: str
    step: str
    activated_at: datetime | None
    history: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def done_at(self) -> datetime | None:
        return next((at for step, at in self.history if step == "done"), None)

    @property
    def latency(self) -> float | None:
        """Seconds from the CRM's activation to the journal posted (the `done` transition), if it got there."""
        done = self.done_at
        if done is None or self.activated_at is None:
            return None
        return (done - self.activated_at).total_seconds()

    def stages(self) -> dict[str, float]:
        """Seconds spent per step (a step entered twice, e.g. `retrying`, sums), plus the ingest span."""
        spans: dict[str, float] = {}
        if self.activated_at is not None and self.history:
            spans[INGEST] = (self.history[0][1] - self.activated_at).total_seconds()
        for (step, at), (_, following) in zip(self.history, self.history[1:], strict=False):
            if step == "done":
                break
            spans[step] = spans.get(step, 0.0) + (following - at).total_seconds()
        return spans


def stage_summaries(instances: Iterable[Instance]) -> dict[str, dict[str, float]]:
    """Per stage: the percentiles of the time the completed instances that went through it spent in it."""
    per: dict[str, list[float]] = {}
    order: list[str] = []
    for inst in instances:
        if inst.done_at is None:
            continue
        for stage, seconds in inst.stages().items():
            if stage not in per:
                per[stage] = []
                order.append(stage)
            per[stage].append(seconds)
    return {stage: summary(per[stage]) | {"total": sum(per[stage])} for stage in order}


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _frame(raw: str) -> tuple[str, str]:
    """(function, file) of one py-spy frame `func (file:line)`; native frames have no file."""
    match = _FRAME.match(raw.strip())
    if match is None:
        return raw.strip(), ""
    return match["func"], match["file"]


def module_of(filename: str) -> str:
    """A readable owner of a frame's file as py-spy names it (`package/module.py`, relative to its sys.path
    entry): the top-level package, with accord's subpackage (`accord.runtime`), or `stdlib`/`native`."""
    if not filename:
        return "native"
    if filename.startswith("<frozen"):
        return "stdlib (import machinery)"
    parts = short(filename).split("/")
    if len(parts) == 1:
        return "stdlib" if "." in parts[0] else parts[0]
    if parts[0] == "accord" and len(parts) > 2:
        return f"accord.{parts[1]}"
    return parts[0]


#: frames every stack of an asyncio service passes through: not evidence of where the CPU goes
_PLUMBING = ("asyncio/runners.py", "asyncio/base_events.py", "asyncio/events.py", "<frozen runpy>", "threading.py")


@dataclass
class Profile:
    samples: int
    self_top: list[tuple[str, int]]  # "func (file)" → samples with it on top of the stack
    inclusive_top: list[tuple[str, int]]  # "func (file)" → samples with it anywhere in the stack
    modules: list[tuple[str, int]]  # owner of the top frame → samples
    stacks: list[tuple[str, int]] = field(default_factory=list)  # the hottest stacks, innermost frames last


def parse_collapsed(text: str, top: int = 15, depth: int = 6) -> Profile:
    """Top functions of a py-spy `--format raw` output (one `frame;frame;...;leaf count` line per stack)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    stacks: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        # the first frame is the thread ("process 123:\"python\"" / "thread (0x...)" with --threads): skip non-frames
        frames = [f for f in frames if "(" in f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        labels = []
        for raw in frames:
            func, file = _frame(raw)
            labels.append(f"{func} ({short(file)})")
        own[labels[-1]] += n
        useful = [label for label in labels if not _plumbing(label)]
        stacks[" → ".join(useful[-depth:]) or "(asyncio plumbing only)"] += n
        modules[module_of(_frame(frames[-1])[1])] += n
        for label in set(labels):
            if not _plumbing(label):
                inclusive[label] += n
    return Profile(
        total, own.most_common(top), inclusive.most_common(top), modules.most_common(top), stacks.most_common(8)
    )


def _plumbing(label: str) -> bool:
    return label.endswith(tuple(f"{p})" for p in _PLUMBING)) or "__main__.py)" in label


def short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
