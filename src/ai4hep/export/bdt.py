"""The conifer route: a LightGBM run -> conifer model -> bit-accurate C++ emulation (cpp backend, g++).

conifer 1.11 has no LightGBM converter, and its ONNX converter reads only the graphs sklearn-onnx writes (it looks for
ZipMap and base_values; onnxmltools' LightGBM graphs have neither). So the trees are read from LightGBM's own
`dump_model()` and written in conifer's public ensemble-dict format (the one its converters produce): one dict per
tree with feature, threshold, value, children_left/right and weight, trees[iteration][class], and the '<=' split
convention LightGBM uses. The emulation is then checked against LightGBM's float margins.

conifer's wheel lacks two C++ headers it compiles against: `ap_fixed.h` (taken from hls4ml's bundled copy through
XILINX_AP_INCLUDE when that is unset) and `nlohmann/json.hpp` (Debian's nlohmann-json3-dev; `make` installs it).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ai4hep.errors import UserError
from ai4hep.export.hls import quiet
from ai4hep.export.precision import FixedPoint

JSON_HINT = "install it with 'apt-get install nlohmann-json3-dev' (or run 'make', which does)"
DEFAULT_INCLUDES = ("/usr/include", "/usr/local/include")


def ap_types_dir() -> Path | None:
    """hls4ml ships the Xilinx ap_types headers (Apache-2.0) that conifer's wheel lacks."""
    import importlib.util

    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "templates" / "vivado" / "ap_types"
    return path if (path / "ap_fixed.h").exists() else None


def json_header_dir() -> Path | None:
    """Where g++ will find nlohmann/json.hpp: conifer's own folder, the compiler's search path, or /usr/include."""
    import conifer

    dirs = [Path(conifer.__path__[0]) / "external" / "json" / "include"]
    for var in ("CPLUS_INCLUDE_PATH", "CPATH"):
        dirs += [Path(d) for d in os.environ.get(var, "").split(os.pathsep) if d]
    dirs += [Path(d) for d in DEFAULT_INCLUDES]
    return next((d for d in dirs if (d / "nlohmann" / "json.hpp").exists()), None)


def prepare_headers() -> dict[str, str]:
    """Point conifer's g++ call at the headers before it compiles; one clear error line when one is missing."""
    found = {}
    if not any(os.environ.get(v) for v in ("XILINX_AP_INCLUDE", "XILINX_HLS", "XILINX_VIVADO")):
        ap = ap_types_dir()
        if ap is None:
            raise UserError(
                "conifer needs the Xilinx ap_fixed.h headers: install hls4ml (pip install hls4ml, which bundles them) "
                "or set XILINX_AP_INCLUDE to a folder holding ap_fixed.h"
            )
        os.environ["XILINX_AP_INCLUDE"] = str(ap)
    found["ap_types"] = os.environ.get("XILINX_AP_INCLUDE") or os.environ.get("XILINX_HLS") or ""
    js = json_header_dir()
    if js is None:
        raise UserError(f"conifer needs the C++ header nlohmann/json.hpp, which is not on this machine; {JSON_HINT}")
    if str(js) not in DEFAULT_INCLUDES:  # g++ searches /usr/include itself; anything else goes on its path
        paths = [p for p in os.environ.get("CPLUS_INCLUDE_PATH", "").split(os.pathsep) if p]
        os.environ["CPLUS_INCLUDE_PATH"] = os.pathsep.join(dict.fromkeys([*paths, str(js)]))
    found["json"] = str(js)
    return found


def _tree(structure: dict, n_features: int) -> dict:
    """One LightGBM tree (nested dicts) as conifer's flat arrays, nodes numbered depth-first from the root."""
    feature: list[int] = []
    threshold: list[float] = []
    value: list[float] = []
    left: list[int] = []
    right: list[int] = []

    def visit(node: dict) -> int:
        i = len(feature)
        feature.append(-2)
        threshold.append(-2.0)
        value.append(float(node.get("leaf_value", node.get("internal_value", 0.0))))
        left.append(-1)
        right.append(-1)
        if "split_feature" not in node:
            return i
        if node.get("decision_type", "<=") != "<=":
            raise UserError(f"LightGBM split '{node['decision_type']}' (categorical) has no conifer equivalent")
        t = float(node["threshold"])
        if node.get("missing_type") == "Zero" and bool(node.get("default_left")) != (t >= 0):
            raise UserError("the BDT treats zeros as missing (zero_as_missing), which conifer cannot reproduce")
        feature[i], threshold[i] = int(node["split_feature"]), t
        left[i] = visit(node["left_child"])
        right[i] = visit(node["right_child"])
        return i

    if "split_feature" not in structure:  # a single-leaf tree: a split whose two leaves agree, same output
        leaf = float(structure["leaf_value"])
        structure = {
            "split_feature": 0,
            "threshold": 0.0,
            "left_child": {"leaf_value": leaf},
            "right_child": {"leaf_value": leaf},
        }
    visit(structure)
    weight = [[1 if f == k else 0 for k in range(n_features)] for f in feature]
    return {
        "feature": feature,
        "threshold": threshold,
        "value": value,
        "children_left": left,
        "children_right": right,
        "weight": weight,
    }


def _depth(tree: dict, i: int = 0) -> int:
    if tree["children_left"][i] == -1:
        return 0
    return 1 + max(_depth(tree, tree["children_left"][i]), _depth(tree, tree["children_right"][i]))


def ensemble_dict(booster) -> dict:
    """conifer's ensemble dict from a LightGBM booster (binary: one learner; multiclass: one per class)."""
    dump = booster.dump_model()
    n_learners = int(dump["num_class"])
    n_features = int(dump["max_feature_idx"]) + 1
    trees = [_tree(t["tree_structure"], n_features) for t in dump["tree_info"]]
    if len(trees) % n_learners:
        raise UserError(f"the BDT has {len(trees)} trees, not a multiple of its {n_learners} classes; retrain the run")
    iterations = [trees[i : i + n_learners] for i in range(0, len(trees), n_learners)]
    return {
        "max_depth": max(_depth(t) for t in trees),
        "n_trees": len(iterations),
        "n_classes": 2 if n_learners == 1 else n_learners,
        "n_features": n_features,
        "trees": iterations,
        "init_predict": [0.0] * n_learners,  # LightGBM folds its initial score into the first trees
        "norm": 1,
        "library": "lightgbm",
        "splitting_convention": "<=",
    }


def margins_to_probs(margins: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.asarray(margins, dtype=np.float64)
    if n_classes == 2:
        p = 1.0 / (1.0 + np.exp(-m.reshape(-1)))
        return np.stack([1 - p, p], axis=1)
    m = m.reshape(-1, n_classes)
    e = np.exp(m - m.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@dataclass
class BDTEmulation:
    model: object
    n_classes: int
    compile_s: float
    project: Path
    headers: dict

    def margins(self, x: np.ndarray) -> np.ndarray:
        with quiet():
            y = self.model.decision_function(np.ascontiguousarray(x, dtype=np.float64))
        return np.asarray(y, dtype=np.float64).reshape(len(x), -1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return margins_to_probs(self.margins(x), self.n_classes)


def convert_booster(ensemble: dict, precision: FixedPoint, out_dir: Path, n_classes: int) -> BDTEmulation:
    """Write and compile the conifer cpp project of an ensemble_dict in out_dir (inputs, thresholds, scores at
    precision)."""
    import conifer

    headers = prepare_headers()
    start = time.perf_counter()
    cfg = {"Backend": "cpp", "OutputDir": str(out_dir), "ProjectName": "bdt", "Precision": precision.hls()}
    with quiet():
        model = conifer.model.make_model(ensemble, cfg)
        try:
            model.compile()
        except Exception as exc:
            raise RuntimeError(f"g++ could not compile the conifer project in {out_dir} ({exc})") from None
    return BDTEmulation(model, n_classes, round(time.perf_counter() - start, 2), out_dir, headers)


def route_check(booster, ensemble: dict, x: np.ndarray, n: int = 200) -> float:
    """The booster's ensemble dict in float (conifer's python backend) against LightGBM's own margins: the conversion,
    not the quantisation. A difference beyond float rounding is a bug, not a user error."""
    import conifer

    with quiet():
        model = conifer.model.make_model(ensemble)
        ours = np.asarray(model.decision_function(x[:n].astype(np.float64)), dtype=np.float64).reshape(
            min(n, len(x)), -1
        )
    theirs = np.asarray(booster.predict(x[:n], raw_score=True), dtype=np.float64).reshape(len(ours), -1)
    diff = float(np.abs(ours - theirs).max())
    if diff > 1e-4 * max(1.0, float(np.abs(theirs).max())):
        raise RuntimeError(f"the LightGBM -> conifer conversion disagrees with LightGBM in float by {diff:.3g}")
    return diff


def depth_note(ensemble: dict) -> str | None:
    depth = ensemble["max_depth"]
    if depth <= 8:
        return None
    return (
        f"trees reach depth {depth}: conifer's HLS backends pad every tree to 2^depth leaves, so for firmware train "
        "with model.params.max_depth <= 8 (the C++ emulation here is not affected)"
    )


def synthesise(ensemble: dict, precision: FixedPoint, out_dir: Path) -> dict:
    """Vivado/Vitis HLS synthesis through conifer's xilinxhls backend when an HLS tool is on PATH."""
    import conifer
    from conifer.backends.common import get_hls
    from conifer.backends.xilinxhls import auto_config

    tool = get_hls()
    if tool is None:
        return {
            "ran": False,
            "message": "synthesis skipped: no Vitis/Vivado HLS (vitis-run, vitis_hls, vivado_hls) on PATH; "
            "the resource proxies (comparisons, comparator bits) are reported instead",
        }
    start = time.perf_counter()
    cfg = auto_config()
    cfg.update({"OutputDir": str(out_dir), "ProjectName": "bdt", "Precision": precision.hls()})
    with quiet():
        model = conifer.model.make_model(ensemble, cfg)
        model.write()
        ok = model.build(synth=True)
        report = model.read_report() if ok else {}
    return {"ran": bool(ok), "tool": tool, "seconds": round(time.perf_counter() - start, 1), "report": report}


def tree_proxy(d: dict, precision: FixedPoint) -> dict:
    """The BDT's resource proxy (from its ensemble_dict): comparators (one per split, `precision.width` bits) and
    leaves (score adders)."""
    trees = [t for it in d["trees"] for t in it]
    splits = sum(sum(f != -2 for f in t["feature"]) for t in trees)
    leaves = sum(sum(f == -2 for f in t["feature"]) for t in trees)
    return {
        "trees": len(trees),
        "max_depth": d["max_depth"],
        "comparisons": int(splits),
        "leaves": int(leaves),
        "comparator_bits": int(splits * precision.width),
        "definition": "comparisons: one threshold comparator per split node, each precision-width bits wide",
    }
