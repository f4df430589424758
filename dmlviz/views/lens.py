"""The Query lens page: one query's ranked list, marked right or wrong, and how a second run ranks it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dmlviz.views.embedding_map import class_names_of
from dmlviz.views.style import CORRECT, NOISY, WRONG
from dmlviz.views.templating import macro


@dataclass
class Ranking:
    """A query's top-K list: ``neighbours`` (sample indices, best first), their cosine
    ``similarities``, and ``stats`` (``ap@r``, ``r_precision``, ``first_correct_rank``, ``r``;
    NaN where unknown). ``source`` says where it came from: ``"stored"`` (the run's eval/) or
    ``"live"`` (computed now from the embeddings)."""

    query: int
    neighbours: np.ndarray
    similarities: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)
    source: str = "stored"


STAT_KEYS = ("ap@r", "r_precision", "first_correct_rank", "r")


def stored_ranking(
    query: int,
    neighbours: np.ndarray,
    similarities: np.ndarray,
    per_query: pd.DataFrame | None = None,
) -> Ranking:
    """The query's row of a run's stored neighbour table, with its per-query metrics."""
    query = int(query)
    if not 0 <= query < len(neighbours):
        raise ValueError(f"query {query} is outside the split's {len(neighbours)} samples")
    return Ranking(query, neighbours[query], similarities[query], query_row(per_query, query))


def query_row(per_query: pd.DataFrame | None, query: int) -> dict[str, float]:
    """``STAT_KEYS`` of ``query`` from a per-query table (NaN for what it lacks)."""
    stats = dict.fromkeys(STAT_KEYS, math.nan)
    if per_query is None or per_query.empty:
        return stats
    if "query" in per_query and (
        query >= len(per_query) or int(per_query["query"].iat[query]) != query
    ):
        rows = per_query[per_query["query"] == query]
        if rows.empty:
            return stats
        row = rows.iloc[0]
    elif query < len(per_query):
        row = per_query.iloc[query]
    else:
        return stats
    for key in STAT_KEYS:
        if key in row and row[key] is not None:
            stats[key] = float(row[key])
    return stats


def worst_query(per_query: pd.DataFrame | None) -> int:
    """The query with the lowest AP@R in a per-query table (0 when no AP@R is known)."""
    if per_query is None or not per_query["ap@r"].notna().any():
        return 0
    return int(per_query.loc[per_query["ap@r"].idxmin(), "query"])


def query_classes(
    query: int,
    labels: np.ndarray,
    observed: np.ndarray | None,
    class_names: list[str] | None,
) -> tuple[str, str | None]:
    """``(class, observed class)`` of sample ``query``: its clean class and the class the loss was
    told (None without observed labels), as a query card shows them."""

    def name(values: np.ndarray) -> str:
        return str(class_names_of(np.array([values[query]]), class_names)[0])

    return name(labels), None if observed is None else name(observed)


def live_ranking(
    embeddings: np.ndarray, labels: np.ndarray, query: int, top_k: int = 20
) -> Ranking:
    """The query ranked against the rest of its split now, with exact AP@R and first-correct rank
    (``dmlviz.evaluate.retrieval_metrics``, one query): for splits the run did not evaluate."""
    from dmlviz.evaluate import retrieval_metrics

    query = int(query)
    n = len(labels)
    if not 0 <= query < n:
        raise ValueError(f"query {query} is outside the split's {n} samples")
    rest = np.delete(np.arange(n), query)
    result = retrieval_metrics(
        embeddings[[query]],
        labels[[query]],
        embeddings[rest],
        labels[rest],
        ks=(1,),
        top_k=min(top_k, n - 1),
        clustering=False,
    )
    stats = query_row(result.per_query.assign(query=0), 0)
    return Ranking(query, rest[result.neighbours[0]], result.similarities[0], stats, source="live")


def ranked_list(
    ranking: Ranking,
    labels: np.ndarray,
    class_names: list[str] | None = None,
    observed: np.ndarray | None = None,
    k: int = 10,
    ref_labels: np.ndarray | None = None,
) -> pd.DataFrame:
    """The top ``k`` of ``ranking`` as a table: ``rank`` (1-based), ``index``, ``similarity``,
    ``label``, ``class``, ``correct`` (same clean label as the query) and, when the split has
    observed (noisy) labels, ``observed``, ``observed_class`` and ``noisy`` (the neighbour was
    trained under a label that is not its clean one). ``labels`` are the query split's clean
    labels; ``ref_labels`` those of the reference split when the neighbours index another split
    (a query/gallery protocol)."""
    neighbours = np.asarray(ranking.neighbours[:k], dtype=np.int64)
    valid = neighbours >= 0
    neighbours = neighbours[valid]
    sims = np.asarray(ranking.similarities[:k], dtype=float)[valid]
    neighbour_labels = np.asarray(labels if ref_labels is None else ref_labels)[neighbours]
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, len(neighbours) + 1),
            "index": neighbours,
            "similarity": sims,
            "label": neighbour_labels,
            "class": class_names_of(neighbour_labels, class_names),
            "correct": neighbour_labels == labels[ranking.query],
        }
    )
    if observed is not None and ref_labels is None and len(observed) == len(labels):
        frame["observed"] = np.asarray(observed)[neighbours]
        frame["observed_class"] = class_names_of(frame["observed"].to_numpy(), class_names)
        frame["noisy"] = frame["observed"].to_numpy() != neighbour_labels
    return frame


def ap_at_r_steps(correct: np.ndarray, r: int) -> pd.DataFrame:
    """AP@R of one ranked list, place by place over its first ``r`` places: ``rank`` i,
    ``correct`` rel(i), ``precision`` P(i) (share correct among the first i) and ``term``
    P(i)·rel(i) / R; the terms sum to the query's AP@R (Musgrave et al., 2020)."""
    correct = np.asarray(correct, dtype=bool)[:r]
    ranks = np.arange(1, len(correct) + 1)
    precision = np.cumsum(correct) / ranks
    return pd.DataFrame(
        {"rank": ranks, "correct": correct, "precision": precision, "term": precision * correct / r}
    )


def ap_at_r_figure(steps: pd.DataFrame, title: str | None = None) -> go.Figure:
    """``ap_at_r_steps`` drawn: P(i) at each of the first R places (green where the i-th result
    has the query's class, grey where not) and the running sum of the terms, which ends at AP@R."""
    figure = go.Figure()
    colors = np.where(steps["correct"], CORRECT, "#cccccc")
    figure.add_trace(go.Bar(x=steps["rank"], y=steps["precision"], marker_color=colors,
                            name="P(i): precision of the first i", hovertemplate=
                            "rank %{x}<br>P(i) %{y:.3f}<extra></extra>"))  # fmt: skip
    figure.add_trace(go.Scatter(x=steps["rank"], y=steps["term"].cumsum(), mode="lines",
                                line=dict(color="#222"), name="AP@R so far: Σ P(i)·rel(i) / R"))  # fmt: skip
    figure.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10),
                         xaxis_title="rank i (up to R)", yaxis_range=[0, 1.02], bargap=0.05,
                         legend=dict(orientation="h", y=-0.25), plot_bgcolor="white")  # fmt: skip
    return figure


def rank_changes(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """How the second run re-ranks the first run's list: one row per sample in either top-K, with
    ``rank_a`` / ``rank_b`` (NaN: not in that top-K), ``change`` (positive: moved up in the
    second run) and a readable ``move`` ("↑ 3", "↓ 2", "=", "new", "dropped")."""
    a = first.set_index("index")["rank"]
    b = second.set_index("index")["rank"]
    order = list(dict.fromkeys([*second["index"], *first["index"]]))
    rows = []
    for index in order:
        rank_a = float(a.get(index, math.nan))
        rank_b = float(b.get(index, math.nan))
        rows.append({"index": int(index), "rank_a": rank_a, "rank_b": rank_b})
    frame = pd.DataFrame(rows, columns=["index", "rank_a", "rank_b"])
    frame["change"] = frame["rank_a"] - frame["rank_b"]
    frame["move"] = [_move(ra, rb) for ra, rb in zip(frame["rank_a"], frame["rank_b"], strict=True)]
    if "correct" in second and "correct" in first:
        correct = pd.concat(
            [second.set_index("index")["correct"], first.set_index("index")["correct"]]
        )
        correct = correct[~correct.index.duplicated()]
        frame["correct"] = frame["index"].map(correct).astype(bool)
    return frame


def difference_text(
    left: pd.DataFrame, right: pd.DataFrame, names: tuple[str, str] = ("left", "right")
) -> str:
    """Over the whole split, the two runs' MAP@R difference (right - left) with its 95 % interval
    from a paired bootstrap over the split's classes, in words: within noise or which is better;
    or why the per-query tables ``left`` and ``right`` cannot be compared."""
    from dmlviz.evaluate.paired import SplitMismatch, compare_tables

    try:
        comparison = compare_tables(left, right, ("map@r",), names=names)
    except SplitMismatch as error:
        return f"The two runs cannot be compared over the whole split: {error}."
    difference = comparison.differences[0]
    return f"Over the whole split, {difference.text(*names)}."


def _move(rank_a: float, rank_b: float) -> str:
    if math.isnan(rank_a):
        return "new"
    if math.isnan(rank_b):
        return "dropped"
    change = int(rank_a - rank_b)
    return "=" if change == 0 else f"↑ {change}" if change > 0 else f"↓ {-change}"


def summary_line(stats: dict[str, float]) -> str:
    """A sentence on where the query's first correct neighbour is (or why there is none)."""
    first = stats.get("first_correct_rank", math.nan)
    r = stats.get("r", math.nan)
    if r == 0:
        return "This query's class has no other sample in the split, so it cannot be retrieved."
    if first is None or math.isnan(first):
        return "No sample of the query's class is in its ranked list."
    if first == 1:
        return "The nearest neighbour has the query's class."
    return f"The first neighbour of the query's class is at rank {rank_text(first)}."


def rank_text(rank: float) -> str:
    """A rank for display: ``"none"`` when unknown, an integer, or the expected rank over the
    orders of tied neighbours (``"1.5 (tied)"``)."""
    if rank is None or math.isnan(rank):
        return "none"
    return f"{int(rank)}" if float(rank).is_integer() else f"{rank:.1f} (tied)"


def query_card_html(
    uri: str, index: int, class_name: str, observed_class: str | None = None
) -> str:
    """The query's thumbnail as an HTML card (blue frame), noting a flipped training label."""
    flipped = observed_class is not None and observed_class != class_name
    card = macro("cards.html.j2", "query_card")(
        uri, index, class_name, observed_class if flipped else None
    )
    return str(card)  # not Markup: ``"<style>..." + Markup`` would escape the style


def ranked_strip_html(
    ranked: pd.DataFrame, thumbnails: list[str], moves: dict[int, str] | None = None
) -> str:
    """The ranked list as a row of thumbnail cards: a green frame and ✓ for the query's class, a red
    frame and ✗ otherwise, an orange ⚠ where the observed (trained-on) label disagrees with the
    clean one, and the rank change against another run when ``moves`` maps index -> move."""
    cards = []
    for row, uri in zip(ranked.to_dict("records"), thumbnails, strict=True):
        color, mark = (CORRECT, "✓") if row["correct"] else (WRONG, "✗")
        cards.append(
            {
                "uri": uri,
                "color": color,
                "mark": mark,
                "rank": row["rank"],
                "index": row["index"],
                "similarity": row["similarity"],
                "class_name": str(row["class"]),
                "move": (moves or {}).get(int(row["index"])),
                "trained_as": str(row["observed_class"]) if row.get("noisy") else None,
            }
        )
    return str(macro("cards.html.j2", "ranked_strip")(cards))


LENS_CSS = f"""
<style>
.dmlviz-strip {{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0 10px 0}}
.dmlviz-card {{border:3px solid #ccc;border-radius:8px;padding:3px;width:86px;background:#fff;
  text-align:center;font-size:11.5px;line-height:1.25;font-family:sans-serif;
  box-sizing:border-box}}
.dmlviz-card img {{width:72px;height:72px;object-fit:contain;image-rendering:pixelated;
  border-radius:4px;background:#f4f4f4}}
.dmlviz-query {{border-color:#1f5fbf;width:120px}}
.dmlviz-query img {{width:104px;height:104px}}
.dmlviz-cap {{margin-top:3px;overflow:hidden;text-overflow:ellipsis}}
.dmlviz-dim {{color:#777}}
.dmlviz-flag {{margin-top:3px;background:{NOISY};color:#fff;border-radius:4px;padding:1px 3px;
  font-size:11px}}
.dmlviz-move {{background:#eef;border-radius:4px;padding:0 3px;font-size:11px}}
</style>
"""
