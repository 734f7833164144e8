"""`ai4hep fastml convert RUN --precision P`: FPGA firmware source for a trained run, validated before it is kept.

MLP runs go through hls4ml (export/hls.py), LightGBM runs through conifer (export/bdt.py). Both compile the
bit-accurate C++ emulation with g++ and compare it with the float model on real jets (the run's test split by
default). The project and validation.json appear together in RUN/fastml/<precision> or not at all: a collapsed or
failed conversion leaves nothing behind, and its error line carries the numbers.

The firmware takes the run's standardised features ((x - mean) / std, the numbers in the run's preprocessing.json), as
the network does; the trigger path upstream computes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ai4hep.atomic import check_target, make_dir
from ai4hep.errors import UserError
from ai4hep.export.fastml_validate import check, compare
from ai4hep.export.precision import FixedPoint, parse_precision
from ai4hep.extras import require

DEFAULT_MAX_JETS = 100_000
GRANULARITIES = ("model", "name")
NO_SYNTH = {"ran": False, "message": "synthesis not asked for (--no-synth); the resource proxies are reported"}


def route(tagger) -> str | None:
    """The firmware route of a run's model (its kind says: "hls4ml" for the MLP, "conifer" for the BDT), or None."""
    return tagger.kind.fastml_route(tagger.model)


def load_run(run: Path):
    """The run, if fastml can convert its model: the MLP on high-level features, or the LightGBM BDT."""
    from ai4hep.run.reader import TrainedRun

    tagger = TrainedRun(Path(run))
    name = tagger.entry.name
    if route(tagger) not in ROUTES or tagger.pre.get("object_features"):
        raise UserError(
            f"{run} holds a '{name}' model; fastml converts the MLP (model: mlp, e.g. configs/hlf5_mlp.yaml) and the "
            "LightGBM BDT (model: bdt) on high-level jet features; export other models with 'ai4hep export onnx'"
        )
    return tagger


def load_inputs(tagger, files: list[Path], max_jets: int) -> tuple[np.ndarray, np.ndarray]:
    """Standardised features and labels of up to max_jets jets, in file order."""
    xs, ys, n = [], [], 0
    for batch in tagger.stream(files):
        xs.append(batch["jet"])
        ys.append(batch["label"])
        n += len(batch["label"])
        if n >= max_jets:
            break
    if not xs:
        raise UserError(f"no jets in {', '.join(map(str, files))}; pass --data with jets to validate on")
    return np.concatenate(xs)[:max_jets].astype(np.float32), np.concatenate(ys)[:max_jets]


def check_out(out_dir: Path, marker: str = "validation.json") -> Path:
    """The resolved out_dir, if it can take a fastml output (checked before any work): absent, empty, or an earlier
    output of the same kind (it holds `marker`), in a place that can be written."""
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / marker).exists())):
        raise UserError(
            f"--out {out_dir} exists and is not an earlier fastml output (no {marker}); choose a new folder"
        )
    check_target(out_dir, "--out")
    return out_dir


@contextlib.contextmanager
def staging(out_dir: Path, marker: str = "validation.json") -> Iterator[Path]:
    """A temporary sibling folder renamed onto out_dir when the block succeeds, removed when it fails. An existing
    out_dir is replaced only when it is an earlier output of the same kind (it holds `marker`)."""
    out_dir = check_out(out_dir, marker)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    make_dir(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for f in tmp.glob("*/*"):  # the tools record their absolute folder in their config files
        if f.is_file() and f.suffix in (".yml", ".json", ".tcl") and f.stat().st_size < 50_000_000:
            text = f.read_text(errors="ignore")
            if str(tmp) in text:
                f.write_text(text.replace(str(tmp), str(out_dir)))
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, out_dir)


def default_out(run: Path, precision: FixedPoint, granularity: str) -> Path:
    return Path(run) / "fastml" / (precision.slug() + ("" if granularity == "model" else f"-{granularity}"))


def _float_trees(tagger, x: np.ndarray) -> np.ndarray:
    return np.asarray(tagger.model.predict_proba(x), dtype=np.float64)


def _float_network(tagger, x: np.ndarray) -> np.ndarray:
    from ai4hep.export.hls import hls_network

    return network_probabilities(hls_network(tagger.model), x)


def float_probabilities(tagger, x: np.ndarray) -> np.ndarray:
    """The float model's probabilities, computed as its firmware route sees the model."""
    return ROUTES[route(tagger)][0](tagger, x)


def network_probabilities(net, x: np.ndarray) -> np.ndarray:
    """A float network in hls_network form (softmax included) on numpy inputs, in float64."""
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(x)).double().numpy()


def convert(
    run: Path,
    precision: str,
    out: Path | None = None,
    data: list[Path] | None = None,
    granularity: str = "model",
    reuse_factor: int = 1,
    max_jets: int = DEFAULT_MAX_JETS,
    synth: bool = True,
) -> dict:
    """Convert, compile, validate; returns (and writes as validation.json) the comparison with float."""
    require("fastml", "'ai4hep fastml convert'")
    from ai4hep import __version__
    from ai4hep.run.layout import write_json_atomic

    p = parse_precision(precision)
    if granularity not in GRANULARITIES:
        raise UserError(f"--granularity '{granularity}' is not one of {', '.join(GRANULARITIES)}")
    if reuse_factor < 1:
        raise UserError(f"--reuse-factor {reuse_factor} must be at least 1")
    tagger = load_run(run)
    how = route(tagger)
    if how != "hls4ml" and (granularity != "model" or reuse_factor != 1):
        raise UserError("--granularity and --reuse-factor are hls4ml options (MLP runs); a BDT goes through conifer")
    out_dir = Path(out) if out else default_out(run, p, granularity)
    check_out(out_dir)
    files = tagger.files(data)
    x, y = load_inputs(tagger, files, max_jets)
    float_probs = float_probabilities(tagger, x)
    with staging(out_dir) as tmp:
        options = {"granularity": granularity, "reuse_factor": reuse_factor} if how == "hls4ml" else {}
        result = ROUTES[how][1](tagger, p, tmp, x, y, float_probs, synth=synth, **options)
        result.update(
            {
                "run": str(run),
                "model": tagger.entry.name,
                "classes": tagger.classes,
                "precision": p.given,
                "precision_used": p.hls(),
                "data": [str(f) for f in files],
                "inputs": {
                    "features": tagger.pre["jet_features"],
                    "standardised": "x' = (x - mean) / std, mean and std from the run's preprocessing.json",
                    "mean": tagger.pre["normalisation"]["jet_mean"],
                    "std": tagger.pre["normalisation"]["jet_std"],
                },
                "ai4hep_version": __version__,
                "output_dir": str(out_dir.resolve()),
            }
        )
        write_json_atomic(tmp / "validation.json", result)
    return result


def _convert_mlp(tagger, p, tmp, x, y, float_probs, *, granularity, reuse_factor, synth) -> dict:
    import hls4ml

    from ai4hep.export.hls import BACKEND, IO_TYPE, convert_torch, hls_network, ptq_proxy, synthesise

    net = hls_network(tagger.model)
    emu = convert_torch(net, x.shape[1], p, tmp / "hls4ml", granularity, reuse_factor)
    m = compare(float_probs, emu.predict(x), y)
    check(m, emu.softmax_input(), granularity)
    return {
        "route": "hls4ml",
        "tool_version": hls4ml.__version__,
        "backend": BACKEND,
        "io_type": IO_TYPE,
        "granularity": granularity,
        "reuse_factor": reuse_factor,
        "pinned": emu.pinned,
        "softmax_input_type": emu.softmax_input(),
        "compile_s": emu.compile_s,
        **m,
        "resource_proxy": ptq_proxy(net, p, reuse_factor),
        "synthesis": synthesise(emu) if synth else NO_SYNTH,
        "layers": emu.layers(),
        "project": "hls4ml/",
    }


def _convert_bdt(tagger, p, tmp, x, y, float_probs, *, synth) -> dict:
    import conifer

    from ai4hep.export.bdt import convert_booster, depth_note, ensemble_dict, route_check, synthesise, tree_proxy

    booster = tagger.model.booster
    ensemble = ensemble_dict(booster)  # read from LightGBM's dump once, used by every step below
    float_check = route_check(booster, ensemble, x)
    emu = convert_booster(ensemble, p, tmp / "conifer", len(tagger.classes))
    margins = emu.margins(x)
    float_margins = np.asarray(booster.predict(x, raw_score=True), dtype=np.float64).reshape(len(x), -1)
    m = compare(float_probs, emu.predict(x), y)
    check(m)
    return {
        "route": "conifer",
        "tool_version": str(conifer.__version__),
        "backend": "cpp",
        "compile_s": emu.compile_s,
        **m,
        "max_abs_margin_diff": float(np.abs(margins - float_margins).max()),
        "conversion_check_float_margin_diff": float_check,
        "notes": [n for n in (depth_note(ensemble),) if n],
        "headers": emu.headers,
        "resource_proxy": tree_proxy(ensemble, p),
        "synthesis": synthesise(ensemble, p, tmp / "conifer_hls") if synth else NO_SYNTH,
        "project": "conifer/",
    }


# Per firmware route: the float model as the route sees it, and the converter.
ROUTES = {"hls4ml": (_float_network, _convert_mlp), "conifer": (_float_trees, _convert_bdt)}


def summary(r: dict) -> list[str]:
    """The short table the CLI prints."""
    proxy = r["resource_proxy"]
    if r["route"] == "hls4ml":
        route = f"hls4ml {r['tool_version']} ({r['backend']}, {r['io_type']}, granularity {r['granularity']})"
        size = f"{proxy['multiplications']} multiplications, {proxy['bops']:.3g} bit operations"
        if proxy["reuse_factor"] > 1:
            size += f", {proxy['multiplier_limit']} multipliers at reuse factor {proxy['reuse_factor']}"
    else:
        route = f"conifer {r['tool_version']} (cpp backend)"
        size = f"{proxy['trees']} trees, {proxy['comparisons']} comparisons of {r['precision_used']}"
    return [
        f"{route}: {r['precision']} -> {r['precision_used']}, {r['n_jets']} jets",
        f"{'':<18}{'float':>8}{'fixed':>8}",
        f"{'accuracy':<18}{r['float_accuracy']:>8.4f}{r['fixed_accuracy']:>8.4f}"
        f"  (difference {r['accuracy_difference']:+.4f})",
        f"{'argmax agreement':<18}{r['argmax_agreement']:>16.4f}",
        f"{'max |fixed-float|':<18}{r['max_abs_diff']:>16.4f}  (class probabilities)",
        f"resource proxy: {size}",
        *r.get("notes", []),
        r["synthesis"]["message"] if not r["synthesis"]["ran"] else f"synthesis ran ({r['synthesis']['tool']})",
        f"wrote {r['output_dir']} ({r['project']} project, validation.json)",
    ]
