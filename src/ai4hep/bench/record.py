"""One benchmark record: a (dataset, model, budget) cell of a suite, its metrics over seeds, its cost and the exact
environment, dataset and config that produced it. Records are what the store keeps, the report shows and
`bench compare` checks; everything else a record points to (model cards, plots, ONNX files, test inputs) lives in
its `artifacts` folder.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Spread(BaseModel):
    """A metric over seeds: mean, sample standard deviation (0 for one seed), and the per-seed values."""

    model_config = ConfigDict(extra="forbid")
    mean: float | None
    std: float | None
    values: list[float | None]
    # The statistical error of one seed's value (e.g. binomial error of a rejection), averaged over seeds: what
    # `bench compare` uses together with the seed spread to decide whether a change is significant.
    error: float | None = None


class Cost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_jets_per_s: float
    infer_jets_per_s: float
    peak_rss_mb: float
    cpu_time_s: float
    wall_time_s: float
    energy_j: float
    energy_method: str  # "rapl" (counters read) or "model: <cpu seconds> x <watts per core>"


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str  # uuid4 hex
    created: str  # ISO 8601, UTC
    suite: str
    task: str  # dataset name: top, qg, jetclass, flavour, hlf5
    model: str  # registered model name
    config_name: str  # e.g. top_particlenet_small
    budget: str  # e.g. small, full
    seeds: list[int]
    metrics: dict[str, Spread]  # headline metrics by name, e.g. auc, rejection@0.3, light_rejection@0.7
    primary_metric: str  # the leaderboard's sort key for this task
    cost: Cost
    environment: dict  # packages, python, cpu, cores, git (ai4hep.run.card.environment())
    dataset_hash: str  # combined content hash of the dataset's shards
    dataset_card: dict
    config: dict  # the full training config of the first seed (seed field varies)
    artifacts: str = ""  # folder: model cards, plots, export/model.onnx, test_inputs.npz, reference_outputs.npz
    ai4hep_version: str = Field(..., description="package version that wrote the record")
