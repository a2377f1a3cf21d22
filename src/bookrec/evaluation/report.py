"""Evaluation reports: `report.json` for machines and a self-contained `report.html` for people.

The HTML page carries everything inline (CSS, and plots as SVG drawn by matplotlib without
pyplot, on an Agg canvas): it opens from disk or an e-mail attachment with no network access.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bookrec.evaluation.repeated import describe_paired
from bookrec.recsys.evaluate import (
    DEFAULT_HISTORY_BINS,
    EvaluationResult,
    HistoryBreakdown,
    PopularityBias,
    by_history_length,
    popularity_bias,
)

__all__ = ["render_html", "write_report"]

LOWER_IS_BETTER = frozenset({"fit s", "rank s"})
META_FIRST = ("dataset", "split", "k", "date", "seed")
COLORS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
REFERENCE_COLOR = "#9a9a9a"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-variant-numeric: tabular-nums;
        font-size: 0.9rem; }
.scroll { overflow-x: auto; }
th, td { padding: 0.3rem 0.4rem; border-bottom: 1px solid #e5e5e5; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f4f4f4; }
td.best { background: #dff3e0; font-weight: 600; }
table.meta td, table.meta th { text-align: left; }
.note { color: #666; font-size: 0.9rem; }
figure { margin: 1rem 0; }
svg { max-width: 100%; height: auto; }
"""


# -- JSON --------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain JSON data: NaN/inf become null, numpy scalars and arrays become Python values."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _full_meta(result: EvaluationResult, meta: Mapping[str, Any]) -> dict[str, Any]:
    full = dict(meta)
    full.setdefault("k", result.k)
    full.setdefault("date", datetime.now(UTC).isoformat(timespec="seconds"))
    full.setdefault("relevance_threshold", result.relevance_threshold)
    return full


# -- SVG plots ---------------------------------------------------------------------------------


def _text(label: str) -> str:
    """Text matplotlib draws literally (a '$' would otherwise start mathtext)."""
    return label.replace("$", r"\$")


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _svg(figure: Figure, prefix: str) -> str:
    """The figure as an inline <svg> element: no XML prolog, no metadata, ids made unique."""
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "bookrec"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\bid="', f'id="{prefix}-', svg)
    return svg.replace('href="#', f'href="#{prefix}-').replace("url(#", f"url(#{prefix}-")


def _color(index: int) -> str:
    return COLORS[index % len(COLORS)]


def _metric_bars(result: EvaluationResult) -> str:
    names = result.metric_names
    models = result.model_names
    columns = 3
    rows = max(1, math.ceil(len(names) / columns))
    figure = _new_figure(11, 2.6 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    positions = np.arange(len(models))
    for index, axis in enumerate(axes.ravel()):
        if index >= len(names):
            axis.set_visible(False)
            continue
        metric = names[index]
        values = [result.metrics[model][metric] for model in models]
        heights = [v if math.isfinite(v) else 0.0 for v in values]
        bars = axis.bar(positions, heights, color=[_color(i) for i in range(len(models))])
        axis.bar_label(bars, labels=[f"{v:.3g}" if math.isfinite(v) else "–" for v in values])
        axis.set_title(_text(metric), fontsize=10)
        axis.set_xticks(positions, [_text(m) for m in models], rotation=20, ha="right")
        axis.margins(y=0.18)
        axis.spines[["top", "right"]].set_visible(False)
    return _svg(figure, "metrics")


def _history_lines(breakdown: HistoryBreakdown) -> str:
    figure = _new_figure(9, 4)
    axis = figure.subplots()
    filled = [i for i, users in enumerate(breakdown.users) if users > 0]
    positions = np.arange(len(filled))
    for index, (model, values) in enumerate(breakdown.values.items()):
        axis.plot(
            positions,
            [values[i] for i in filled],
            marker="o",
            color=_color(index),
            label=_text(model),
        )
    axis.set_xticks(positions, [f"{breakdown.labels[i]}\n({breakdown.users[i]:,})" for i in filled])
    axis.set_xlabel("ratings in the reader's training history (readers per bin)")
    axis.set_ylabel(_text(breakdown.metric))
    axis.set_ylim(bottom=0)
    axis.grid(axis="y", alpha=0.3)
    axis.spines[["top", "right"]].set_visible(False)
    if breakdown.values:
        axis.legend(frameon=False)
    return _svg(figure, "history")


def _bias_bars(bias: PopularityBias) -> str:
    labels = [_text(model) for model in bias.per_model] + ["catalog share", "rating share"]
    values = [*bias.per_model.values(), bias.catalog_share, bias.rating_share]
    colors = [_color(i) for i in range(len(bias.per_model))] + [REFERENCE_COLOR] * 2
    figure = _new_figure(9, 3.8)
    axis = figure.subplots()
    positions = np.arange(len(labels))
    heights = [100 * v if math.isfinite(v) else 0.0 for v in values]
    bars = axis.bar(positions, heights, color=colors)
    for bar in bars[len(bias.per_model) :]:
        bar.set_hatch("//")
    axis.bar_label(bars, labels=[f"{h:.1f}%" for h in heights])
    axis.set_xticks(positions, labels, rotation=15, ha="right")
    axis.set_ylabel(f"% in the top {bias.top_fraction:.0%} most popular books")
    axis.set_ylim(0, 110)
    axis.spines[["top", "right"]].set_visible(False)
    return _svg(figure, "bias")


# -- HTML --------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _format(value: float | None, seconds: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.3g}" if seconds else f"{value:.4f}"


def _meta_table(meta: Mapping[str, Any]) -> str:
    keys = [key for key in META_FIRST if key in meta] + [
        key for key in meta if key not in META_FIRST
    ]
    rows = "".join(
        f"<tr><th>{_e(key)}</th><td>{_e(_jsonable(meta[key]))}</td></tr>" for key in keys
    )
    return f'<table class="meta"><tbody>{rows}</tbody></table>'


def _metrics_table(result: EvaluationResult) -> str:
    models = result.model_names
    columns: dict[str, list[float | None]] = {
        metric: [result.metrics[model][metric] for model in models]
        for metric in result.metric_names
    }
    columns["fit s"] = [result.fit_seconds[model] for model in models]
    columns["rank s"] = [result.recommend_seconds[model] for model in models]
    best: dict[str, float | None] = {}
    for name, values in columns.items():
        finite = [v for v in values if v is not None and math.isfinite(v)]
        pick = min if name in LOWER_IS_BETTER else max
        best[name] = pick(finite) if len(finite) > 1 else None
    header = "".join(f"<th>{_e(name)}</th>" for name in columns)
    body = []
    for row, model in enumerate(models):
        cells = []
        for name, values in columns.items():
            value = values[row]
            css = ' class="best"' if value is not None and value == best[name] else ""
            cells.append(f"<td{css}>{_e(_format(value, name in LOWER_IS_BETTER))}</td>")
        body.append(f"<tr><td>{_e(model)}</td>{''.join(cells)}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr><th>model</th>{header}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _repeated_tables(repeated: Mapping[str, Any]) -> str:
    """Across splits: mean [95 % interval] per model and metric, then the paired tests."""
    metrics = list(next(iter(repeated["metrics"].values())))
    header = "".join(f"<th>{_e(m)}</th>" for m in metrics)

    def interval(summary: Mapping[str, float] | None) -> str:
        if summary is None:
            return "<td>–</td>"
        return f"<td>{summary['mean']:.4f} [{summary['low']:.4f}, {summary['high']:.4f}]</td>"

    rows = [
        f"<tr><td>{_e(model)}</td>{''.join(interval(values[m]) for m in metrics)}</tr>"
        for model, values in repeated["metrics"].items()
    ]
    paired_rows: list[str] = []
    for model, tests in repeated["paired"].items():
        paired: list[str] = []
        for m in metrics:
            test = tests.get(m)
            if test is None:
                paired.append("<td>–</td>")
                continue
            paired.append(f"<td>{_e(describe_paired(test))}</td>")
        paired_rows.append(f"<tr><td>{_e(model)}</td>{''.join(paired)}</tr>")
    return (
        f'<div class="scroll"><table><thead><tr><th>model</th>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        f"<h3>Against {_e(repeated['baseline'])} (paired t-test over the same splits)</h3>"
        f'<div class="scroll"><table><thead><tr><th>model</th>{header}</tr></thead>'
        f"<tbody>{''.join(paired_rows)}</tbody></table></div>"
        f'<p class="note">{_e(repeated["splits"])} random splits (seeds '
        f"{_e(', '.join(map(str, repeated['seeds'])))}): mean [95 % Student-t interval] of "
        "each metric; below, the mean difference from the baseline (relative to its mean) and "
        "the two-sided p-value of a paired t-test. The sections after this one show the first "
        "split.</p>"
    )


def render_html(
    result: EvaluationResult,
    meta: Mapping[str, Any],
    breakdown: HistoryBreakdown,
    bias: PopularityBias,
    repeated: Mapping[str, Any] | None = None,
) -> str:
    """The report page: meta, models x metrics table, and the three plots, all inline."""
    counts = result.counts
    title = f"Evaluation report — {meta.get('dataset', 'bookrec')}"
    sections = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="note">{_e(len(result.user_ids))} readers evaluated at K = {_e(result.k)}; '
        f"relevant = held-out ratings ≥ {_e(f'{result.relevance_threshold:g}')}; "
        f"{_e(counts.get('train_ratings', '?'))} training and "
        f"{_e(counts.get('test_ratings', '?'))} test ratings.</p>",
        "<h2>Run</h2>",
        _meta_table(meta),
        *(
            []
            if repeated is None
            else [f"<h2>Across {_e(repeated['splits'])} splits</h2>", _repeated_tables(repeated)]
        ),
        "<h2>Metrics</h2>" if repeated is None else "<h2>Metrics on the first split</h2>",
        _metrics_table(result),
        '<p class="note">Best value per column highlighted (lowest for timings: "fit s" to '
        'train, "rank s" to rank every evaluated reader). Accuracy metrics average over '
        "readers with at least one relevant held-out book; diversity is "
        "mean pairwise 1 − cosine within a list, novelty the mean −log2 share of readers who "
        "rated a recommended book.</p>",
    ]
    if result.model_names:
        sections += [
            "<h2>Metrics by model</h2>",
            f"<figure>{_metric_bars(result)}</figure>",
            f"<h2>{_e(breakdown.metric)} by reader history length</h2>",
            f"<figure>{_history_lines(breakdown)}</figure>",
            "<h2>Popularity bias</h2>",
            f"<figure>{_bias_bars(bias)}</figure>",
            f'<p class="note">Share of recommended slots holding one of the {bias.n_popular:,} '
            f"most popular books (top {bias.top_fraction:.0%} by training readers), against "
            "their share of the catalog and of the training ratings.</p>",
        ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_report(
    result: EvaluationResult,
    directory: Path,
    meta: Mapping[str, Any],
    bins: Sequence[int] = DEFAULT_HISTORY_BINS,
    top_fraction: float = 0.1,
    per_user: bool = True,
    repeated: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write `report.json` (everything) and `report.html` (self-contained) into `directory`.

    `meta` describes the run (dataset, split, seed, ...); K and the date are added when missing.
    `per_user=False` leaves the per-reader arrays out of the JSON (they grow with the readers).
    `repeated` (`evaluation.repeated.summarise`) adds the metrics over several splits.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    full_meta = _full_meta(result, meta)
    breakdown = by_history_length(result, bins)
    bias = popularity_bias(result, top_fraction)
    data = {
        "meta": _jsonable(full_meta),
        **result.to_dict(per_user=per_user),
        "by_history_length": {
            metric: by_history_length(result, bins, metric).to_dict()
            for metric in ("ndcg", "recall")
        }
        if result.model_names
        else {},
        "popularity_bias": bias.to_dict(),
        **({} if repeated is None else {"repeated": repeated}),
    }
    json_path = directory / "report.json"
    html_path = directory / "report.html"
    json_path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    html_path.write_text(
        render_html(result, full_meta, breakdown, bias, repeated), encoding="utf-8"
    )
    return json_path, html_path
