"""Gradient-boosted decision trees (LightGBM) on high-level jet features: the baseline every tagger is compared to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ai4hep.atomic import atomic_path


class BDTParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_estimators: int = Field(500, gt=0)
    num_leaves: int = Field(31, gt=1)
    max_depth: int = -1
    learning_rate: float = Field(0.05, gt=0)
    min_child_samples: int = Field(20, gt=0)
    early_stopping_rounds: int = Field(30, gt=0)


class BDT:
    """sklearn-style fit/predict over LightGBM, deterministic for a given seed and thread count."""

    inputs = ("jet",)
    extras: tuple[str, ...] = ()

    def __init__(self, params: BDTParams, n_classes: int, seed: int, threads: int) -> None:
        self.params = params
        self.n_classes = n_classes
        self.seed = seed
        self.threads = threads
        self.booster = None

    def fit(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> dict:
        import lightgbm as lgb

        p = self.params
        objective = (
            {"objective": "binary"} if self.n_classes == 2 else {"objective": "multiclass", "num_class": self.n_classes}
        )
        booster_params = {
            **objective,
            "num_leaves": p.num_leaves,
            "max_depth": p.max_depth,
            "learning_rate": p.learning_rate,
            "min_child_samples": p.min_child_samples,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.threads,
            "verbosity": -1,
        }
        train = lgb.Dataset(x, y, weight=w)
        val = lgb.Dataset(x_val, y_val, reference=train)
        history: dict = {}
        self.booster = lgb.train(
            booster_params,
            train,
            num_boost_round=p.n_estimators,
            valid_sets=[val],
            valid_names=["val"],
            callbacks=[lgb.early_stopping(p.early_stopping_rounds, verbose=False), lgb.record_evaluation(history)],
        )
        return {"best_iteration": int(self.booster.best_iteration), "history": history}

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self.booster.predict(x, num_iteration=self.booster.best_iteration)
        return np.stack([1 - p, p], axis=1) if self.n_classes == 2 else p

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            self.booster.save_model(str(tmp), num_iteration=self.booster.best_iteration)

    @classmethod
    def load(cls, path: Path, params: BDTParams, n_classes: int) -> BDT:
        import lightgbm as lgb

        bdt = cls(params, n_classes, seed=0, threads=1)
        bdt.booster = lgb.Booster(model_file=str(path))
        return bdt

    def n_trees(self) -> int:
        return int(self.booster.num_trees())

    def ops_per_jet(self) -> int:
        """Comparisons per jet: one per level of every tree (the BDT analogue of FLOPs)."""
        dump = self.booster.dump_model()
        depth = 0

        def walk(node: dict, d: int) -> int:
            if "split_feature" not in node:  # a leaf (or a tree that is a single leaf)
                return d
            return max(walk(node["left_child"], d + 1), walk(node["right_child"], d + 1))

        for tree in dump["tree_info"]:
            depth += walk(tree["tree_structure"], 0)
        return depth
