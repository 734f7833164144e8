"""Flavour-tagging ablation: IP3D-like templates, DIPS, and the GN2-style model without and with its auxiliary tasks,
trained on the same `flavour` shards and evaluated on the same test shards.

    python benchmarks/flavour_ablation.py --data bench-data/flavour400k --epochs 10 --test bench-data/flavour-test1250k

Reports light- and c-jet rejection at the 70% b-efficiency working point (binomial errors), the improvement
factors over DIPS and over the IP baseline (errors twice: the binomial errors in quadrature, and a paired bootstrap
that keeps the correlation of taggers scored on the same jets), and the auxiliary-task metrics, then writes the table to
docs/benchmarks/flavour_ablation.json and puma-style comparison plots to WORK/plots. Runs resume: a finished
run is reused.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import yaml

from ai4hep.data.inspect import dataset_files
from ai4hep.evaluate import Predictions, TrainedRun, aux_metrics, compute_metrics, predict
from ai4hep.metrics.flavour import LIGHT, C, at_working_point, discriminant_b, rejection_ratio
from ai4hep.plots import flavour as fp
from ai4hep.train.run import train

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("IP3D-like", "DIPS")  # the ratios' denominators, never skipped
BOOTSTRAP = 500  # replicas of the paired ratio errors
TAGGERS = {  # name -> config; the first is the ratio-panel reference of the plots
    "IP3D-like": "flavour_ip3d.yaml",
    "DIPS": "flavour_dips.yaml",
    "GN2-style, no aux": "flavour_gn2_noaux.yaml",
    "GN2-style": "flavour_gn2.yaml",
}


def _config(name: str, data: str, epochs: int, seed: int, work: Path) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / TAGGERS[name]).read_text())
    raw["data"]["paths"] = [data]
    raw["seed"] = seed
    if "trainer" in raw:
        raw["trainer"]["max_epochs"] = epochs
    path = work / "configs" / f"{_slug(name)}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _slug(name: str) -> str:
    return name.lower().replace(",", "").replace(" ", "_").replace("-", "_")


def _wp70(metrics: dict) -> dict:
    return at_working_point(metrics["flavour"]["b_tagging"], 0.7)


def _ratio(a: dict, b: dict) -> tuple[float, float]:
    """a/b of two rejections with their binomial errors added in quadrature, as if from independent samples."""
    r = a["rejection"] / b["rejection"]
    return r, r * math.hypot(a["error"] / a["rejection"], b["error"] / b["rejection"])


def _paired(a: Predictions, b: Predictions, f_c: float) -> dict[str, tuple[float, float]]:
    """a/b in light and c rejection with the paired bootstrap error: both taggers scored the same test jets."""
    if not np.array_equal(a.labels, b.labels):
        raise SystemExit(f"{a.name} and {b.name} were not scored on the same test jets")
    da, db = discriminant_b(a.probs, f_c), discriminant_b(b.probs, f_c)
    out = {}
    for flav, k in (("light", LIGHT), ("c", C)):
        r = rejection_ratio(da, db, a.labels, 0.7, background=k, n_boot=BOOTSTRAP)
        out[flav] = (r["ratio"], r["error"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="bench-data/flavour400k")
    ap.add_argument("--work", default="out/flavour-ablation")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--test", default=None, help="separate test dataset for the rejection table (default: test split)")
    ap.add_argument("--only-train", action="store_true", help="train (or resume) the runs and stop")
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=[t for t in TAGGERS if t not in BASELINES],
        help="taggers to leave out (e.g. a second training seed of DIPS and GN2-style only)",
    )
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "flavour_ablation.json"))
    args = ap.parse_args()
    work = Path(args.work)
    taggers = [t for t in TAGGERS if t not in args.skip]
    cards = {}
    for name in taggers:
        run = work / "runs" / _slug(name)
        cards[name] = train(_config(name, args.data, args.epochs, args.seed, work), run, progress=False)
        print(f"{name}: trained in {cards[name]['training_time_s']:.0f}s, {cards[name]['train_jets_per_s']} jets/s")
    if args.only_train:
        return
    preds, metrics = {}, {}
    for name in taggers:
        tagger = TrainedRun(work / "runs" / _slug(name))
        files = dataset_files(Path(args.test)) if args.test else tagger.test_files()
        preds[name] = predict(tagger, files, aux=False)
        preds[name].name = name
        metrics[name] = compute_metrics(preds[name])
        if tagger.spec.targets:  # auxiliary-task metrics on the run's own test split (pair outputs are large)
            metrics[name].update(aux_metrics(predict(tagger, tagger.test_files())))
    rows = []
    for name, m in metrics.items():
        wp = _wp70(m)
        row = {
            "tagger": name,
            "light_rejection": wp["light"]["rejection"],
            "light_error": wp["light"]["error"],
            "c_rejection": wp["c"]["rejection"],
            "c_error": wp["c"]["error"],
            "parameters": cards[name]["parameter_count"],
            "train_jets_per_s": cards[name]["train_jets_per_s"],
            "epochs": cards[name].get("epochs"),
            "b_tagging": m["flavour"]["b_tagging"],
        }
        for base in BASELINES:
            paired = _paired(preds[name], preds[base], m["flavour"]["f_c"])
            for flav in ("light", "c"):
                row[f"{flav}_vs_{base}"] = _ratio(wp[flav], _wp70(metrics[base])[flav])
                row[f"{flav}_vs_{base}_paired"] = paired[flav]
        for key in ("track_origin", "vertexing"):
            if key in m:
                row[key] = m[key]
        rows.append(row)
    n = metrics["DIPS"]["flavour"]["n_jets"]
    print(f"\ntest jets: {n}; working point: 70% b-efficiency, f_c = {metrics['DIPS']['flavour']['f_c']}")
    print("ratios: ± quadrature of the binomial errors / ± paired bootstrap on the same test jets")
    print("| tagger | light rejection | c rejection | light vs DIPS | c vs DIPS | light vs IP3D | c vs IP3D |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r['light_rejection']:.1f} ± {r['light_error']:.1f}", f"{r['c_rejection']:.2f} ± {r['c_error']:.2f}"]
        cells += [
            f"{r[k][0]:.2f} ± {r[k][1]:.2f} / {r[k + '_paired'][1]:.2f}"
            for k in ("light_vs_DIPS", "c_vs_DIPS", "light_vs_IP3D-like", "c_vs_IP3D-like")
        ]
        print(f"| {r['tagger']} | " + " | ".join(cells) + " |")
    for r in rows:
        if "track_origin" in r:
            print(f"{r['tagger']}: track-origin accuracy {r['track_origin']['accuracy']:.3f}")
        if "vertexing" in r:
            v = r["vertexing"]
            print(f"{r['tagger']}: vertex finding efficiency {v['efficiency']:.3f}, purity {v['purity']:.3f}")
    plots = work / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    curves = [(name, p.probs, p.labels, p.pt) for name, p in preds.items()]
    made = [
        fp.plot_flavour_roc(curves, plots / "roc.png", reference="DIPS"),
        fp.plot_rejection_vs_pt(curves, plots / "rejection_vs_pt.png", reference="DIPS"),
        fp.plot_fc_scan(curves, plots / "fc_scan.png"),
    ]
    result = {
        "command": f"python benchmarks/flavour_ablation.py --data {args.data} --epochs {args.epochs} "
        f"--seed {args.seed}"
        + (f" --test {args.test}" if args.test else "")
        + "".join(f' --skip "{t}"' for t in args.skip),
        "test_jets": n,
        "working_point": 0.7,
        "rows": rows,
        "cards": {k: {"config": c["config"], "environment": c["environment"]} for k, c in cards.items()},
        "plots": [str(p) for p in made],
    }
    Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {args.out} and {len(made)} plots in {plots}")


if __name__ == "__main__":
    main()
