"""`ai4hep export triton RUN --repository DIR`: a run as a Triton model folder, DIR/NAME/config.pbtxt and
DIR/NAME/VERSION/model.onnx, that both `ai4hep serve` and a real Triton server (onnxruntime backend) load.

Names, datatypes and dynamic axes are read back from the exported ONNX file itself. With a dynamic first axis the
config has max_batch_size > 0 and dims without the batch axis (-1 for the object axis); otherwise max_batch_size 0
and the full dims. A new model folder is assembled hidden and renamed into place; a new version of an existing
model keeps its config.pbtxt (and any hand edits) when the inputs and outputs still agree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from ai4hep.atomic import atomic_path
from ai4hep.errors import UserError
from ai4hep.extras import require
from ai4hep.serve.model import onnx_tensors
from ai4hep.serve.padding import TRIM_KEY, trimmable
from ai4hep.serve.repository import NAME_RULE, PLATFORM, parse_config, valid_name

MAX_BATCH_SIZE = 1024
MAX_QUEUE_DELAY_US = 100


def _tensors(path: Path) -> tuple[list, list]:
    """[(name, TYPE_X, shape with -1 for symbolic axes)] for the inputs and the outputs of an ONNX file."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def read(args):
        tensors = onnx_tensors(args, f"the ONNX export {path.name}")
        return [
            (name, f"TYPE_{dtype}", [d if isinstance(d, int) and d > 0 else -1 for d in shape])
            for name, (dtype, shape) in tensors.items()
        ]

    return read(session.get_inputs()), read(session.get_outputs())


def build_config(name: str, inputs: list, outputs: list, max_batch_size: int, dynamic_batching: bool, delay_us: int):
    """The ModelConfig message; batching only where every tensor has a dynamic first axis."""
    from tritonclient.grpc import model_config_pb2 as mc

    batching = max_batch_size > 0 and all(shape and shape[0] == -1 for _, _, shape in (*inputs, *outputs))
    config = mc.ModelConfig(name=name, platform=PLATFORM, max_batch_size=max_batch_size if batching else 0)
    for target, tensors in ((config.input, inputs), (config.output, outputs)):
        for tname, dtype, shape in tensors:
            target.add(name=tname, data_type=mc.DataType.Value(dtype), dims=shape[1:] if batching else shape)
    config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_CPU)
    if batching and dynamic_batching:
        config.dynamic_batching.SetInParent()
        config.dynamic_batching.max_queue_delay_microseconds = delay_us
    return config


def _recipe(path: Path) -> dict[str, str]:
    """The training config and preprocessing embedded in the ONNX file, as model-config parameters: a client then
    prepares jets from the server's answer alone (Triton passes unknown parameters through unchanged)."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return {k: meta[k] for k in ("ai4hep.config", "ai4hep.preprocessing") if k in meta}


def _signature(config) -> list:
    """What a new version must share with the model's config (a hand-set max_batch_size may differ)."""
    return [(t.name, t.data_type, list(t.dims)) for t in (*config.input, *config.output)] + [config.max_batch_size > 0]


def export_triton(
    run: Path,
    repository: Path,
    name: str | None = None,
    version: int = 1,
    max_batch_size: int = MAX_BATCH_SIZE,
    max_queue_delay_us: int = MAX_QUEUE_DELAY_US,
    dynamic_batching: bool = True,
    data: list[Path] | None = None,
) -> dict:
    """Export RUN to ONNX (validated against the framework by export_onnx) into REPOSITORY/NAME/VERSION."""
    require("serve", "'ai4hep export triton'")
    from google.protobuf import text_format

    from ai4hep.export.onnx import export_onnx

    run, repository = Path(run), Path(repository)
    name = name or run.name
    if not valid_name(name):
        raise UserError(f"model name {name!r}: {NAME_RULE}; pass --name")
    if version < 1:
        raise UserError(f"--version {version}: versions are whole numbers from 1")
    if max_batch_size < 0 or max_queue_delay_us < 0:
        raise UserError("--max-batch-size and --max-queue-delay-us must be >= 0")
    model_dir = repository / name
    target = model_dir / str(version) / "model.onnx"
    if target.exists():
        raise UserError(f"{target} exists; pass --version {version + 1} to add a version, or remove it")
    if repository.exists() and not repository.is_dir():
        raise UserError(f"--repository {repository} is a file; give a folder")
    repository.mkdir(parents=True, exist_ok=True)
    staging = repository / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        onnx_file = staging / str(version) / "model.onnx"
        result = export_onnx(run, out=onnx_file, **({"data": list(data)} if data else {}))
        for stray in onnx_file.parent.glob(".*.tmp-*"):  # temporaries an exporter left beside its output
            stray.unlink()
        inputs, outputs = _tensors(onnx_file)
        config = build_config(name, inputs, outputs, max_batch_size, dynamic_batching, max_queue_delay_us)
        for key, value in _recipe(onnx_file).items():  # what 'ai4hep infer' needs to prepare jets for the model
            config.parameters[key].string_value = value
        if trimmable(onnx_file):  # ai4hep's object models with per-jet outputs: see serve/padding.py
            config.parameters[TRIM_KEY].string_value = "mask"
        text = f"# Written by 'ai4hep export triton' from {run}.\n" + text_format.MessageToString(config)
        existing = model_dir / "config.pbtxt"
        if existing.exists():
            old = parse_config(existing, name)
            if _signature(old) != _signature(config):
                raise UserError(
                    f"{existing} declares other inputs or outputs than this run's export; export it under another "
                    "--name"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(onnx_file, target)
            config, config_written = old, False
        else:
            (staging / "config.pbtxt").write_text(text)
            if model_dir.exists():  # a folder without config.pbtxt (e.g. copied by hand): fill it in place
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(onnx_file, target)
                with atomic_path(existing) as tmp:
                    tmp.write_text(text)
            else:
                os.replace(staging, model_dir)
            config_written = True
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return {
        "model": name,
        "version": version,
        "file": str(target),
        "config": str(model_dir / "config.pbtxt"),
        "config_written": config_written,
        "max_batch_size": config.max_batch_size,
        "dynamic_batching": config.HasField("dynamic_batching"),
        "max_queue_delay_us": config.dynamic_batching.max_queue_delay_microseconds,
        "inputs": [(n, t.removeprefix("TYPE_"), s) for n, t, s in inputs],
        "outputs": [(n, t.removeprefix("TYPE_"), s) for n, t, s in outputs],
        "onnx": result,
    }
