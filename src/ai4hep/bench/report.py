"""`ai4hep bench report`: benchmark records as a static HTML site that opens offline from any folder.

    index.html              one leaderboard per task (sortable), each with a summary plot of its primary metric
    records/<id>.html       per record: model card, metrics per seed, cost, dataset card, environment, its plots
    records/<id>/...        the PNG files found below the record's artifacts folder
    plots/<task>.png        the summary plots
    environment.html        the distinct environments (package versions, python, CPU, git) and their records

Every value is escaped; there are no external assets (CSS and the small sort script are inline). The site is built in
a temporary sibling folder and renamed into place at the end, so `out` is either the old site or the whole new one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from collections import Counter
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from matplotlib.figure import Figure

from ai4hep import __version__
from ai4hep.bench.record import Record, Spread

# Cost columns of the leaderboard: (key, header, Cost field, format).
COST_COLUMNS = (
    ("train_jets_per_s", "train jets/s", "train_jets_per_s", "{:,.0f}"),
    ("infer_jets_per_s", "inference jets/s", "infer_jets_per_s", "{:,.0f}"),
    ("peak_rss_mb", "peak RSS MB", "peak_rss_mb", "{:,.0f}"),
    ("cpu_time_s", "CPU s", "cpu_time_s", "{:,.1f}"),
)

CSS = """
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d9dee5; --band: #f5f7fa; --accent: #2457a6; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
       margin: 0 auto; padding: 18px 28px 40px; max-width: 1600px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
nav { font-size: 13px; margin-bottom: 10px; }
nav a { margin-right: 14px; }
.meta { color: var(--muted); font-size: 13px; margin: 0 0 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top;
         white-space: nowrap; }
th { background: var(--band); font-weight: 600; }
table.leaderboard { font-size: 12.5px; }
table.leaderboard th { white-space: normal; vertical-align: bottom; }
table.leaderboard th, table.leaderboard td { padding: 4px 6px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
tbody tr:hover { background: #eef3fb; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #b4bcc7; font-size: 11px; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; color: var(--accent); }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; color: var(--accent); }
th.primary, td.primary { background: #eaf1fb; font-weight: 600; }
small, .small { color: var(--muted); font-size: 11px; }
tbody tr.diff, tbody tr.diff th { background: #fff1c2; }
.plot { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); margin: 6px 0; }
.plots { display: flex; flex-wrap: wrap; gap: 14px; }
.plots figure { margin: 0; }
.plots figcaption { color: var(--muted); font-size: 12px; }
pre { background: var(--band); border: 1px solid var(--line); padding: 8px 10px; font-size: 12px; overflow-x: auto;
      max-height: 480px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 3px 16px; font-size: 13px; margin: 6px 0; }
dt { font-weight: 600; }
dd { margin: 0; }
dd pre { margin: 0; max-height: 240px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 0 32px; }
"""

# Sorts any table.sortable by a clicked header: numbers (a cell's data-sort, else its text) compare as numbers, the
# rest as text, empty cells go last either way. `?sort=<column key>&order=asc|desc` sorts on load (used by tests).
SORT_JS = """
(function () {
  "use strict";
  var NUMBER = /^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?$/i;
  function cellKey(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "") return null;
    return NUMBER.test(raw) ? parseFloat(raw) : raw.toLowerCase();
  }
  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }
  function sortTable(table, th, descending) {
    var col = th.cellIndex, body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = cellKey(r1.cells[col]), b = cellKey(r2.cells[col]);
      if (a === null || b === null) return (a === null) - (b === null);
      return descending ? compare(b, a) : compare(a, b);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  function firstDescending(th) { return th.getAttribute("data-type") === "num"; }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () {
        var state = th.getAttribute("aria-sort");
        sortTable(table, th, state ? state === "ascending" : firstDescending(th));
      });
    });
  });
  var params = new URLSearchParams(window.location.search), key = params.get("sort");
  if (key !== null) {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        if (th.getAttribute("data-key") !== key) return;
        var order = params.get("order");
        sortTable(table, th, order ? order === "desc" : firstDescending(th));
      });
    });
  }
})();
"""


def write_report(records: list[Record], out: Path) -> Path:
    """Write the site for `records` into `out` (replacing an existing one only once the new one is complete).

    Returns the path of `out/index.html`.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        _build(records, tmp)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"


def _swap_into_place(new: Path, out: Path) -> None:
    """Rename the finished site onto `out`; the old site is moved aside first and deleted only afterwards."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists() or out.is_symlink():
        os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        if old.exists():
            os.replace(old, out)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()


def _build(records: list[Record], site: Path) -> None:
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    envs = _environments(records)
    env_of = {r.id: i for i, (_, recs) in enumerate(envs) for r in recs}
    tasks = _by_task(records)
    (site / "records").mkdir()
    (site / "plots").mkdir()
    for r in records:
        plots = _copy_artifact_plots(r, site / "records" / _slug(r.id))
        (site / "records" / f"{_slug(r.id)}.html").write_text(_record_page(r, plots, env_of[r.id], generated))
    sections = []
    for task, recs in tasks.items():
        primary = _task_primary(recs)
        ordered = _ranked(recs, primary)
        plot = Path("plots") / f"{_slug(task)}.png"
        _summary_plot(task, primary, ordered, site / plot)
        sections.append(_task_section(task, primary, ordered, plot))
    (site / "index.html").write_text(_index_page(records, tasks, sections, generated))
    (site / "environment.html").write_text(_environment_page(envs, generated))


# --- grouping and formatting -----------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    """A file-name and HTML-id safe form of a task name or record id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip(".") or "_"


def _by_task(records: list[Record]) -> dict[str, list[Record]]:
    tasks: dict[str, list[Record]] = {}
    for r in sorted(records, key=lambda r: r.task):
        tasks.setdefault(r.task, []).append(r)
    return tasks


def _task_primary(records: list[Record]) -> str:
    """The task's leaderboard metric: the primary metric most of its records name (they normally all agree)."""
    return Counter(r.primary_metric for r in records).most_common(1)[0][0]


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _mean(record: Record, metric: str) -> float | None:
    spread = record.metrics.get(metric)
    return _finite(spread.mean) if spread is not None else None


def _ranked(records: list[Record], primary: str) -> list[Record]:
    """Best first by the primary metric (higher is better for every metric we report); records without it last."""

    def key(r: Record) -> tuple:
        m = _mean(r, primary)
        return (m is None, -(m or 0.0), r.model, r.config_name, r.budget, r.created)

    return sorted(records, key=key)


def _num(x: float | None, digits: int = 4) -> str:
    """A value with `digits` significant digits (plain integers from 10**digits on, never 1e+04), or an en dash."""
    x = _finite(x)
    if x is None:
        return "–"
    return f"{x:,.0f}" if abs(x) >= 10**digits else f"{x:.{digits}g}"


def _spread_text(s: Spread | None) -> str:
    if s is None or _finite(s.mean) is None:
        return "–"
    text = _num(s.mean)
    if _finite(s.std) is not None and len(s.values) > 1:
        text += f" ± {_num(s.std, 2)}"
    return text


def _metric_cell(s: Spread | None, cls: str = "num") -> str:
    """Mean ± seed std, and below it the per-seed statistical error when the record has one."""
    text = escape(_spread_text(s))
    if s is not None and _finite(s.error) is not None:
        text += f"<br><small>stat. ± {escape(_num(s.error, 2))}</small>"
    mean = _finite(s.mean) if s is not None else None
    return _td(text, "" if mean is None else mean, cls, raw=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _label(r: Record) -> str:
    return f"{r.model} · {r.config_name} · {r.budget}"


def _git_short(env: dict) -> str:
    git = str(env.get("git", "unknown"))
    dirty = git.endswith("-dirty")
    head = git.removesuffix("-dirty")
    short = head[:7] if re.fullmatch(r"[0-9a-f]{8,}", head) else head
    return short + ("-dirty" if dirty else "")


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _td(text: str, sort: object | None = None, cls: str = "", title: str = "", raw: bool = False) -> str:
    """A table cell; `sort` becomes data-sort (the script's sort key) and `raw` marks `text` as ready HTML."""
    attrs = ""
    if cls:
        attrs += f' class="{cls}"'
    if sort is not None:
        attrs += f' data-sort="{_attr(sort)}"'
    if title:
        attrs += f' title="{_attr(title)}"'
    return f"<td{attrs}>{text if raw else escape(text)}</td>"


def _page(title: str, body: str, generated: str, root: str = "", script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ai4hep {_attr(__version__)}">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<nav><a href="{root}index.html">Leaderboards</a><a href="{root}environment.html">Environments</a></nav>
{body}
<p class="meta">Generated {escape(generated)} by ai4hep {escape(__version__)}.</p>
{js}
</body>
</html>
"""


# --- index page ------------------------------------------------------------------------------------------------------


def _index_page(records: list[Record], tasks: dict[str, list[Record]], sections: list[str], generated: str) -> str:
    suites = sorted({r.suite for r in records})
    toc = " · ".join(f'<a href="#task-{_attr(_slug(t))}">{escape(t)}</a> ({len(rs)})' for t, rs in tasks.items())
    counts = f"{_count(len(records), 'record')} · {_count(len(tasks), 'task')}"
    body = f"""<h1>ai4hep benchmark report</h1>
<p class="meta">Suites: <b>{escape(", ".join(suites) or "none")}</b> · {counts} · generated {escape(generated)}</p>
<p class="meta">Tasks: {toc or "none"}. Click a column header to sort; a model links to its record.</p>
{"".join(sections) or "<p>No records.</p>"}"""
    return _page("ai4hep benchmark report", body, generated, script=SORT_JS)


def _task_section(task: str, primary: str, ordered: list[Record], plot: Path) -> str:
    others = sorted({m for r in ordered for m in r.metrics} - {primary})
    heads = [
        ("rank", "#", "num"),
        ("model", "model", "text"),
        ("config", "config", "text"),
        ("budget", "budget", "text"),
        ("seeds", "seeds", "num"),
        (primary, f"{primary} (primary)", "num"),
        *[(m, m, "num") for m in others],
        *[(key, head, "num") for key, head, _, _ in COST_COLUMNS],
        ("energy_j", "energy J", "num"),
        ("ai4hep_version", "ai4hep", "text"),
        ("git", "git", "text"),
        ("created", "created", "text"),
    ]
    th = "".join(_th(key, head, kind, key == primary) for key, head, kind in heads)
    rows = [_leaderboard_row(i, r, primary, others) for i, r in enumerate(ordered, 1)]
    tid = _slug(task)
    return f"""<section id="task-{_attr(tid)}">
<h2>{escape(task)}</h2>
<p class="meta">{_count(len(ordered), "record")} · sorted by <b>{escape(primary)}</b> (mean ± std over seeds, higher is
better)</p>
<img id="plot-{_attr(tid)}" class="plot" src="{_attr(plot.as_posix())}"
 alt="{_attr(primary)} per model for {_attr(task)}">
<div class="scroll"><table id="leaderboard-{_attr(tid)}" class="sortable leaderboard">
<thead><tr>{th}</tr></thead>
<tbody>
{"".join(rows)}</tbody>
</table></div>
</section>
"""


def _th(key: str, head: str, kind: str, primary: bool) -> str:
    """A sortable header: `data-key` names the column for `?sort=`, `data-type` picks the first click's direction."""
    extra = ' class="num primary" aria-sort="descending"' if primary else ' class="num"' if kind == "num" else ""
    return f'<th data-key="{_attr(key)}" data-type="{kind}"{extra}>{escape(head)}</th>'


def _leaderboard_row(rank: int, r: Record, primary: str, others: list[str]) -> str:
    link = f'<a href="records/{_attr(_slug(r.id))}.html">{escape(r.model)}</a>'
    seeds = ", ".join(map(str, r.seeds)) if len(r.seeds) <= 4 else f"{len(r.seeds)} seeds"
    cells = [
        _td(str(rank), rank, "num"),
        _td(link, r.model, raw=True),
        _td(r.config_name),
        _td(r.budget),
        _td(seeds, len(r.seeds), "num", title=f"seeds {r.seeds}"),
        _metric_cell(r.metrics.get(primary), "num primary"),
        *[_metric_cell(r.metrics.get(m)) for m in others],
    ]
    for _, _, field, fmt in COST_COLUMNS:
        value = getattr(r.cost, field)
        cells.append(_td(fmt.format(value), value, "num"))
    method = r.cost.energy_method.split(":", 1)[0]  # "rapl" or "model"; the whole method is the cell's title
    energy = f"{r.cost.energy_j:,.0f}<br><small>{escape(method)}</small>"
    cells.append(_td(energy, r.cost.energy_j, "num", title=r.cost.energy_method, raw=True))
    cells.append(_td(r.ai4hep_version))
    cells.append(_td(_git_short(r.environment), title=str(r.environment.get("git", ""))))
    cells.append(_td(r.created[:10], r.created, title=r.created))
    return (
        f'<tr data-model="{_attr(r.model)}" data-config="{_attr(r.config_name)}" data-record="{_attr(r.id)}">'
        + "".join(cells)
        + "</tr>\n"
    )


def _summary_plot(task: str, primary: str, ordered: list[Record], path: Path) -> None:
    """The primary metric per record, mean with the seed std as error bar, best on top."""
    shown = [r for r in ordered if _mean(r, primary) is not None]
    height = 1.2 + 0.42 * max(len(shown), 1)
    fig = Figure(figsize=(7.5, height))  # no pyplot: no backend is chosen, savefig picks its own canvas
    ax = fig.subplots()
    if shown:
        y = list(range(len(shown)))[::-1]
        means = [_mean(r, primary) for r in shown]
        errs = [_finite(r.metrics[primary].std) or 0.0 for r in shown]
        ax.errorbar(means, y, xerr=errs, fmt="o", color="#2457a6", ecolor="#2457a6", capsize=4, ms=6)
        ax.set_yticks(y, [_label(r) for r in shown], fontsize=9)
        ax.set_ylim(-0.7, len(shown) - 0.3)
        lo = min(m - e for m, e in zip(means, errs, strict=True))
        hi = max(m + e for m, e in zip(means, errs, strict=True))
        pad = (hi - lo) * 0.15 or abs(hi) * 0.01 or 0.01
        ax.set_xlim(lo - pad, hi + pad)
    else:
        ax.text(0.5, 0.5, f"no {primary} values", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel(f"{primary} (mean ± std over seeds)")
    ax.set_title(f"{task}: {primary}", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --- record pages ----------------------------------------------------------------------------------------------------


def _copy_artifact_plots(r: Record, dest: Path) -> list[Path]:
    """Copy every PNG below the record's artifacts folder into the site; returns paths relative to `dest`'s parent."""
    if not r.artifacts:
        return []
    src = Path(r.artifacts)
    if not src.is_dir():
        return []
    copied = []
    for f in sorted(p for p in src.rglob("*") if p.suffix.lower() == ".png" and p.is_file()):
        rel = f.relative_to(src)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        copied.append(Path(dest.name) / rel)
    return copied


def _pretty(obj: object) -> str:
    return escape(json.dumps(obj, indent=2, sort_keys=False, default=str))


def _definition_list(d: dict) -> str:
    """Scalars inline, nested values as pretty-printed JSON."""
    items = []
    for k, v in d.items():
        value = f"<pre>{_pretty(v)}</pre>" if isinstance(v, (dict, list)) else escape(str(v))
        items.append(f"<dt>{escape(str(k))}</dt><dd>{value}</dd>")
    return f"<dl>{''.join(items)}</dl>" if items else "<p>empty</p>"


def _metrics_table(r: Record) -> str:
    seeds = r.seeds
    n = max([len(s.values) for s in r.metrics.values()] + [len(seeds)])
    names = [f"seed {seeds[i]}" if i < len(seeds) else f"value {i + 1}" for i in range(n)]
    head = "".join(f'<th class="num">{escape(h)}</th>' for h in ["mean", "std", "stat. error", *names])
    rows = []
    for name, s in sorted(r.metrics.items(), key=lambda kv: (kv[0] != r.primary_metric, kv[0])):
        values = [*s.values, *[None] * (n - len(s.values))]
        cells = "".join(f'<td class="num">{escape(_num(v))}</td>' for v in [s.mean, s.std, s.error, *values])
        cls = ' class="primary"' if name == r.primary_metric else ""
        rows.append(f"<tr><td{cls}>{escape(name)}</td>{cells}</tr>")
    return f"<table><thead><tr><th>metric</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cost_table(r: Record) -> str:
    c = r.cost
    rows = [
        ("train throughput", f"{c.train_jets_per_s:,.0f} jets/s"),
        ("inference throughput", f"{c.infer_jets_per_s:,.0f} jets/s"),
        ("peak RSS", f"{c.peak_rss_mb:,.0f} MB"),
        ("CPU time", f"{c.cpu_time_s:,.1f} s"),
        ("wall time", f"{c.wall_time_s:,.1f} s"),
        ("energy", f"{c.energy_j:,.1f} J"),
        ("energy method", c.energy_method),
    ]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _environment_block(env: dict) -> str:
    facts = [
        ("python", env.get("python")),
        ("CPU", env.get("cpu")),
        ("cores", env.get("cores")),
        ("git", env.get("git")),
    ]
    facts += [(k, v) for k, v in env.items() if k not in {"python", "cpu", "cores", "git", "packages"}]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v if v is not None else '–'))}</dd>" for k, v in facts)
    packages = env.get("packages") or {}
    rows = "".join(f"<tr><td>{escape(str(p))}</td><td>{escape(str(v))}</td></tr>" for p, v in sorted(packages.items()))
    table = f"<table><thead><tr><th>package</th><th>version</th></tr></thead><tbody>{rows}</tbody></table>"
    return f"<dl>{dl}</dl>" + (table if packages else "<p>No package versions recorded.</p>")


def _record_page(r: Record, plots: list[Path], env_index: int, generated: str) -> str:
    summary = [
        ("task", r.task),
        ("suite", r.suite),
        ("model", r.model),
        ("config", r.config_name),
        ("budget", r.budget),
        ("seeds", ", ".join(map(str, r.seeds))),
        ("primary metric", r.primary_metric),
        ("created", r.created),
        ("ai4hep version", r.ai4hep_version),
        ("dataset hash", r.dataset_hash),
        ("artifacts", r.artifacts or "–"),
        ("record id", r.id),
    ]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in summary)
    figures = "".join(
        f'<figure><img class="plot" src="{_attr(p.as_posix())}" alt="{_attr(p.name)}">'
        f"<figcaption>{escape(p.relative_to(p.parts[0]).as_posix())}</figcaption></figure>"
        for p in plots
    )
    plots_html = f'<div class="plots">{figures}</div>' if plots else "<p>No plots in the artifacts folder.</p>"
    subtitle = f"({r.config_name}, {r.budget})"
    body = f"""<h1>{escape(r.model)} on {escape(r.task)} <small>{escape(subtitle)}</small></h1>
<p class="meta">{escape(r.primary_metric)} = {escape(_spread_text(r.metrics.get(r.primary_metric)))} ·
<a href="../index.html#task-{_attr(_slug(r.task))}">back to the {escape(r.task)} leaderboard</a></p>
<h2>Model card</h2>
<div class="cards"><dl>{dl}</dl><div><h3>Cost</h3>{_cost_table(r)}</div></div>
<h3>Metrics per seed</h3>
<div class="scroll">{_metrics_table(r)}</div>
<h3>Training config</h3>
<pre>{_pretty(r.config)}</pre>
<h2>Plots</h2>
{plots_html}
<h2>Dataset card</h2>
{_definition_list(r.dataset_card)}
<h2>Environment <small><a href="../environment.html#env-{env_index + 1}">environment {env_index + 1}</a></small></h2>
{_environment_block(r.environment)}"""
    return _page(f"{r.model} on {r.task} — ai4hep", body, generated, root="../")


# --- environments ----------------------------------------------------------------------------------------------------


def _environments(records: list[Record]) -> list[tuple[dict, list[Record]]]:
    """The distinct environments in first-seen order (oldest record first), each with the records it produced."""
    groups: dict[str, tuple[dict, list[Record]]] = {}
    for r in sorted(records, key=lambda r: r.created):
        key = json.dumps(r.environment, sort_keys=True, default=str)
        groups.setdefault(key, (r.environment, []))[1].append(r)
    return list(groups.values())


def _environment_page(envs: list[tuple[dict, list[Record]]], generated: str) -> str:
    parts = ["<h1>Environments</h1>", f'<p class="meta">{_count(len(envs), "distinct environment")}.</p>']
    if len(envs) > 1:
        parts.append(_environment_comparison(envs))
    for i, (env, recs) in enumerate(envs, 1):
        links = "".join(
            f'<li><a href="records/{_attr(_slug(r.id))}.html">{escape(_label(r))}</a> '
            f"<small>{escape(r.task)} · {escape(r.created)}</small></li>"
            for r in recs
        )
        parts.append(
            f'<section id="env-{i}"><h2>Environment {i} <small>({_count(len(recs), "record")}, git '
            f"{escape(_git_short(env))})</small></h2>{_environment_block(env)}"
            f"<h3>Records</h3><ul>{links}</ul></section>"
        )
    return _page("Environments — ai4hep benchmark report", "\n".join(parts), generated)


def _environment_comparison(envs: list[tuple[dict, list[Record]]]) -> str:
    """Package versions side by side; a row whose versions differ is highlighted."""
    packages = sorted({p for env, _ in envs for p in (env.get("packages") or {})})
    rows_spec = [(p, [str((env.get("packages") or {}).get(p, "–")) for env, _ in envs]) for p in packages]
    rows_spec += [(k, [str(env.get(k, "–")) for env, _ in envs]) for k in ("python", "cpu", "cores")]
    rows_spec.append(("git", [_git_short(env) for env, _ in envs]))
    head = "".join(f'<th><a href="#env-{i}">env {i}</a></th>' for i in range(1, len(envs) + 1))
    rows = []
    for name, values in rows_spec:
        cls = ' class="diff"' if len(set(values)) > 1 else ""
        cells = "".join(f"<td>{escape(v)}</td>" for v in values)
        rows.append(f"<tr{cls}><th>{escape(name)}</th>{cells}</tr>")
    return (
        '<div class="scroll"><table id="environment-comparison"><thead><tr><th></th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
