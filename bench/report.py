"""The shared output of every bench: human lines, or one JSON object with ``--json``."""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure beside its baseline; ``ratio`` is oriented so 1.0 is the ceiling."""

    name: str
    value: float
    unit: str
    baseline: float
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        """Project ÷ baseline for rates, baseline ÷ project for times."""
        if self.higher_is_better:
            return self.value / self.baseline if self.baseline else 0.0
        return self.baseline / self.value if self.value else 0.0


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_figures(name: str, ours: list[float], baseline: list[float]) -> list[Figure]:
    """``{name}_p50_ms`` and ``{name}_p99_ms`` of two lists of seconds."""
    return [
        Figure(
            f"{name}_p50_ms",
            statistics.median(ours) * 1000,
            "ms",
            statistics.median(baseline) * 1000,
            higher_is_better=False,
        ),
        Figure(
            f"{name}_p99_ms",
            percentile(ours, 0.99) * 1000,
            "ms",
            percentile(baseline, 0.99) * 1000,
            higher_is_better=False,
        ),
    ]


def parser(description: str) -> argparse.ArgumentParser:
    """The common command line of every bench."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a run under a minute")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def emit(figures: list[Figure], *, as_json: bool) -> None:
    """Print the figures in the contract's format."""
    if as_json:
        print(
            json.dumps(
                {
                    f.name: {
                        "value": round(f.value, 4),
                        "unit": f.unit,
                        "baseline": round(f.baseline, 4),
                        "ratio": round(f.ratio, 4),
                    }
                    for f in figures
                }
            )
        )
        return
    for f in figures:
        print(
            f"{f.name}: {f.value:,.3f} {f.unit} (baseline {f.baseline:,.3f} {f.unit}, "
            f"ratio {f.ratio:.3f})"
        )
