"""`ai4hep fastml scan RUN`: accuracy against firmware size over precisions, pruning and quantisation-aware training.

Every configuration is converted with hls4ml, compiled and run bit-accurately on the same jets as the float model.
Rows: post-training quantisation at ap_fixed<W,I> over a grid of total and integer bits; the network pruned (global
magnitude) at a few sparsities and fine-tuned, at chosen precisions; QAT (brevitas) at a few bit widths. The size is
the resource proxy of export/hls.py (non-zero multiplications x weight bits x input bits, "bit operations"), as no
synthesis runs without Vitis. The smallest configuration whose accuracy is within 1 point (0.01 absolute) of float
is reported; a collapsed configuration is marked and never chosen.
"""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ai4hep.errors import UserError
from ai4hep.export.fastml_validate import collapse, compare
from ai4hep.export.precision import FixedPoint, parse_precision
from ai4hep.extras import require

TOLERANCE = 0.01
COLUMNS = (
    "config",
    "kind",
    "fixed_accuracy",
    "float_accuracy",
    "accuracy_difference",
    "argmax_agreement",
    "source_agreement",
    "max_abs_diff",
    "multiplications",
    "bops",
    "within_tolerance",
    "collapsed",
)


@dataclass
class ScanGrid:
    widths: list[int] = field(default_factory=lambda: [6, 8, 10, 12, 14, 16, 18])
    integers: list[int] = field(default_factory=lambda: [3, 4, 5, 6])
    sparsities: list[float] = field(default_factory=lambda: [0.5, 0.75, 0.9])
    prune_precisions: list[str] = field(default_factory=lambda: ["ap_fixed<16,6>", "ap_fixed<10,4>", "ap_fixed<8,3>"])
    qat_bits: list[int] = field(default_factory=lambda: [4, 6, 8])
    epochs: int = 10
    train_jets: int = 200_000

    @classmethod
    def quick(cls) -> ScanGrid:
        """A few configurations of each kind (tests, a first look)."""
        return cls([8, 16], [6], [0.75], ["ap_fixed<16,6>"], [6], epochs=2, train_jets=20_000)

    def precisions(self) -> list[FixedPoint]:
        return [parse_precision(f"ap_fixed<{w},{i}>") for w in self.widths for i in self.integers if i < w]

    def check(self) -> None:
        if any(w < 2 or w > 32 for w in self.widths) or any(i < 1 for i in self.integers):
            raise UserError("--widths must be 2..32 and --integers at least 1 (e.g. --widths 8,12,16 --integers 4,6)")
        if any(not 0 < s < 1 for s in self.sparsities):
            raise UserError("--prune sparsities must lie strictly between 0 and 1 (e.g. --prune 0.5,0.8)")
        if any(not 2 <= b <= 16 for b in self.qat_bits):
            raise UserError("--qat-bits must be 2..16 (e.g. --qat-bits 4,6)")
        for p in self.prune_precisions:
            parse_precision(p)


def parse_list(text: str | None, kind: type, option: str) -> list | None:
    """'6,8,10' -> [6, 8, 10]; None stays None (the grid's default); '' or 'none' is an empty list."""
    if text is None:
        return None
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} '{text}' is not a comma-separated list of numbers (e.g. {option} 8,12,16)") from None


def make_grid(quick: bool = False, **given) -> ScanGrid:
    """The default (or quick) grid with the given fields replaced (None keeps the default)."""
    grid = ScanGrid.quick() if quick else ScanGrid()
    for k, v in given.items():
        if v is not None:
            setattr(grid, k, v)
    grid.check()
    return grid


def _row(config: str, kind: str, m: dict, source_probs: np.ndarray, fixed: np.ndarray, proxy: dict) -> dict:
    return {
        "config": config,
        "kind": kind,
        "fixed_accuracy": m["fixed_accuracy"],
        "float_accuracy": m["float_accuracy"],
        "accuracy_difference": m["accuracy_difference"],
        "argmax_agreement": m["argmax_agreement"],
        "source_agreement": float((source_probs.argmax(1) == fixed.argmax(1)).mean()),
        "max_abs_diff": m["max_abs_diff"],
        "multiplications": proxy["multiplications"],
        "bops": proxy["bops"],
        "within_tolerance": bool(-m["accuracy_difference"] <= TOLERANCE and not collapse(m)),
        "collapsed": collapse(m) or "",
        "proxy_layers": proxy["layers"],
    }


def scan(
    run: Path,
    out: Path | None = None,
    data: list[Path] | None = None,
    grid: ScanGrid | None = None,
    max_jets: int = 100_000,
    keep_projects: bool = False,
    echo: Callable[[str], None] | None = None,
    synth: bool = False,
) -> dict:
    """Convert every configuration of the grid, compare with float, and write scan.csv, scan.json and scan.png.
    With synth=True and Vitis on PATH every configuration is also synthesised (hours for the full grid)."""
    require("fastml", "'ai4hep fastml scan'")
    from ai4hep.export.compress import QATModel, prune, training_data
    from ai4hep.export.fastml import float_probabilities, load_inputs, load_run, network_probabilities, route, staging
    from ai4hep.export.hls import (
        convert_qonnx,
        convert_torch,
        hls_network,
        ptq_proxy,
        synthesis_tool,
        synthesis_unavailable,
        synthesise,
    )
    from ai4hep.run.layout import write_json_atomic

    grid = grid or ScanGrid()
    grid.check()
    say = echo or (lambda s: None)
    tagger = load_run(run)
    if route(tagger) != "hls4ml":
        raise UserError(f"{run} is a BDT; the scan covers MLPs (pruning, QAT); convert BDTs with 'fastml convert'")
    files = tagger.files(data)
    x, y = load_inputs(tagger, files, max_jets)
    float_probs = float_probabilities(tagger, x)
    net = hls_network(tagger.model)
    out_dir = Path(out) if out else Path(run) / "fastml" / "scan"
    rows: list[dict] = []
    start = time.perf_counter()
    why_not = synthesis_unavailable(synthesis_tool())
    if not synth:
        synthesis = "not asked for (--synth); the resource proxies are the size measure"
    elif why_not is None:
        synthesis = "every configuration synthesised with vitis-run (reports in scan.json)"
    else:
        synthesis = f"synthesis skipped: {why_not}; the resource proxies are reported instead"
        say(synthesis)
    with staging(out_dir, marker="scan.json") as tmp:

        def add(config: str, kind: str, emulate, source_probs: np.ndarray, proxy: dict) -> None:
            folder = tmp / "projects" / config.replace(" ", "_").replace("<", "_").replace(">", "").replace(",", "_")
            emu = emulate(folder)
            fixed = emu.predict(x)
            row = _row(config, kind, compare(float_probs, fixed, y), source_probs, fixed, proxy)
            row["compile_s"] = emu.compile_s
            if synth and why_not is None:
                row["synthesis"] = synthesise(emu)
            rows.append(row)
            if not keep_projects:
                shutil.rmtree(folder, ignore_errors=True)
            say(_line(row))

        for p in grid.precisions():
            add(p.short(), "ptq", lambda d, p=p: convert_torch(net, x.shape[1], p, d), float_probs, ptq_proxy(net, p))
        if grid.sparsities or grid.qat_bits:
            xt, yt, wt = training_data(tagger, grid.train_jets)
        for s in grid.sparsities:
            pruned = prune(net, s, xt, yt, wt, grid.epochs)
            source = network_probabilities(pruned, x)
            for text in grid.prune_precisions:
                p = parse_precision(text)
                emulate = lambda d, p=p, pruned=pruned: convert_torch(pruned, x.shape[1], p, d)  # noqa: E731
                add(f"pruned {s:.0%} {p.short()}", "pruned", emulate, source, ptq_proxy(pruned, p))
        for b in grid.qat_bits:
            q = QATModel(net, b, xt, yt, wt, grid.epochs)
            (tmp / "qonnx").mkdir(exist_ok=True)
            onnx_path = q.export(tmp / "qonnx" / f"qat{b}.onnx", x)
            emulate = lambda d, q=q, f=onnx_path: convert_qonnx(f, q.input_type(x), d, float_probs.shape[1])  # noqa: E731
            add(f"QAT {b}-bit", "qat", emulate, q.probabilities(x), q.proxy())
            if not keep_projects:
                shutil.rmtree(tmp / "qonnx")
        if not keep_projects:
            shutil.rmtree(tmp / "projects", ignore_errors=True)
        best = smallest(rows)
        result = {
            "run": str(run),
            "data": [str(f) for f in files],
            "n_jets": len(y),
            "float_accuracy": float((float_probs.argmax(1) == y).mean()),
            "tolerance": TOLERANCE,
            "grid": grid.__dict__,
            "rows": rows,
            "smallest_within_tolerance": best,
            "proxy_definition": (
                "bops: sum over layers of non-zero quantised weights x weight bits x input bits; "
                "multiplications: non-zero weights (one multiplier each at reuse factor 1)"
            ),
            "synthesis": synthesis,
            "seconds": round(time.perf_counter() - start, 1),
            "output_dir": str(out_dir.resolve()),
        }
        write_csv(tmp / "scan.csv", rows)
        plot(tmp / "scan.png", rows, result["float_accuracy"], best)
        write_json_atomic(tmp / "scan.json", result)
    return result


def smallest(rows: list[dict]) -> dict | None:
    ok = [r for r in rows if r["within_tolerance"]]
    return min(ok, key=lambda r: (r["bops"], -r["fixed_accuracy"])) if ok else None


def _line(r: dict) -> str:
    flag = " COLLAPSED" if r["collapsed"] else (f" within {TOLERANCE} of float" if r["within_tolerance"] else "")
    return (
        f"{r['config']:<28} accuracy {r['fixed_accuracy']:.4f} (float {r['float_accuracy']:.4f}), agreement "
        f"{r['argmax_agreement']:.4f}, max |diff| {r['max_abs_diff']:.3f}, {r['multiplications']} mult, "
        f"{r['bops']:.3g} BOPs{flag}"
    )


def table(result: dict) -> list[str]:
    lines = [f"{'config':<28} {'accuracy':>8} {'float':>7} {'agree':>7} {'maxdiff':>8} {'mult':>6} {'BOPs':>9}"]
    for r in result["rows"]:
        mark = " collapsed" if r["collapsed"] else (" *" if r["within_tolerance"] else "")
        lines.append(
            f"{r['config']:<28} {r['fixed_accuracy']:>8.4f} {r['float_accuracy']:>7.4f} {r['argmax_agreement']:>7.4f} "
            f"{r['max_abs_diff']:>8.3f} {r['multiplications']:>6} {r['bops']:>9.3g}{mark}"
        )
    best = result["smallest_within_tolerance"]
    lines.append(
        f"* accuracy within {result['tolerance']} of float ({result['float_accuracy']:.4f}); smallest: "
        + (f"{best['config']} ({best['bops']:.3g} BOPs, accuracy {best['fixed_accuracy']:.4f})" if best else "none")
    )
    return lines


def write_csv(path: Path, rows: list[dict]) -> None:
    from ai4hep.atomic import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, "compile_s"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot(path: Path, rows: list[dict], float_accuracy: float, best: dict | None) -> None:
    from matplotlib.figure import Figure  # no pyplot: no backend is chosen, savefig picks its own canvas

    from ai4hep.atomic import atomic_path

    fig = Figure(figsize=(7, 7))
    axes = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.3])
    styles = {"ptq": ("o", "post-training ap_fixed<W,I>"), "pruned": ("s", "pruned + fine-tuned"), "qat": ("^", "QAT")}
    for ax in axes:
        for kind, (marker, label) in styles.items():
            sel = [r for r in rows if r["kind"] == kind]
            if sel:
                ax.scatter([r["bops"] for r in sel], [r["fixed_accuracy"] for r in sel], marker=marker, label=label)
        ax.axhline(float_accuracy, color="k", lw=1, label=f"float {float_accuracy:.4f}")
        ax.axhline(float_accuracy - TOLERANCE, color="k", lw=1, ls="--", label=f"float - {TOLERANCE:.2f}")
        if best:
            ax.scatter(
                [best["bops"]], [best["fixed_accuracy"]], s=160, facecolors="none", edgecolors="r", label="smallest"
            )
        ax.set_xscale("log")
        ax.set_ylabel("accuracy (bit-accurate emulation)")
    axes[1].set_ylim(float_accuracy - 5 * TOLERANCE, float_accuracy + TOLERANCE)
    axes[1].set_title("zoom: within 0.05 of float", fontsize=9)
    axes[1].set_xlabel("bit operations (non-zero weights x weight bits x input bits)")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
