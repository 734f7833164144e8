"""The Triton model repository layout: REPO/NAME/config.pbtxt and REPO/NAME/<version>/model.onnx.

config.pbtxt is parsed with protobuf's text format into Triton's own ModelConfig message (bundled with tritonclient),
so what a real Triton server accepts, this accepts, and the same message is what ModelConfig returns. The repository
is read once at startup; requests name models only through a lookup in what was loaded here, never through a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ai4hep.errors import UserError

# Letters, digits, '_', '-', '.'; starts with a letter or digit, so '.', '..' and hidden folders never match.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
RESERVED = {"stats"}  # /v2/models/stats is the statistics endpoint
PLATFORM = "onnxruntime_onnx"
BACKEND = "onnxruntime"
DEFAULT_FILE = "model.onnx"
NAME_RULE = "names hold only letters, digits, '_', '-' and '.', start with a letter or digit, at most 128 characters"


def valid_name(name: str) -> bool:
    return bool(NAME_RE.fullmatch(name)) and name not in RESERVED


@dataclass
class ModelSource:
    """One model folder: its parsed config and the version folders chosen by the version policy."""

    name: str
    config: object  # model_config_pb2.ModelConfig
    versions: dict[int, Path]  # version -> model file


def parse_config(path: Path, name: str):
    """config.pbtxt -> ModelConfig, with the name and platform filled in as Triton does."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    try:
        config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise UserError(f"{path}: not a valid model config ({exc}); see docs/serving.md for the format") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; config.pbtxt must be protobuf text format") from None
    if config.name and config.name != name:
        raise UserError(f"{path}: name '{config.name}' differs from its folder '{name}'; make them equal")
    config.name = name
    if config.platform not in ("", PLATFORM) or config.backend not in ("", BACKEND):
        found = config.platform or config.backend
        raise UserError(f"{path}: platform '{found}' is not served; ai4hep serve runs ONNX models ({PLATFORM})")
    config.platform, config.backend = PLATFORM, BACKEND
    if config.max_batch_size < 0:
        raise UserError(f"{path}: max_batch_size must be >= 0 (0: the model has no batch dimension)")
    if config.HasField("dynamic_batching") and config.max_batch_size == 0:
        raise UserError(f"{path}: dynamic_batching needs max_batch_size > 0")
    if config.HasField("sequence_batching") or config.HasField("ensemble_scheduling"):
        raise UserError(f"{path}: sequence batching and ensembles are not served; remove that block")
    for tensor in (*config.input, *config.output):
        if tensor.HasField("reshape"):
            raise UserError(f"{path}: '{tensor.name}' uses reshape, which ai4hep serve does not apply; remove it")
        if any(d < -1 or d == 0 for d in tensor.dims):
            raise UserError(f"{path}: '{tensor.name}' dims {list(tensor.dims)}: each must be -1 or positive")
    filename = config.default_model_filename or DEFAULT_FILE
    if Path(filename).name != filename or filename.startswith("."):
        raise UserError(f"{path}: default_model_filename '{filename}' must be a plain file name")
    config.default_model_filename = filename
    return config


def _inside(path: Path, root: Path, repository: Path) -> None:
    """Refuse a path that resolves (through links) outside the repository."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise UserError(
            f"{path} links to {resolved}, outside the model repository {repository}; copy the model into the "
            "repository, or start the server with --follow-links"
        )


def _versions(folder: Path, config) -> dict[int, Path]:
    """Numeric version folders holding the model file, filtered by the version policy (default: the latest one)."""
    found = {
        int(d.name): d / config.default_model_filename
        for d in folder.iterdir()
        if d.is_dir() and d.name.isdigit() and (d / config.default_model_filename).is_file()
    }
    if not found:
        raise UserError(
            f"{folder} holds no version folder with {config.default_model_filename} "
            f"(expected {folder}/1/{config.default_model_filename}); write one with 'ai4hep export triton'"
        )
    policy = config.version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return dict(sorted(found.items()))
    if which == "specific":
        missing = [v for v in policy.specific.versions if v not in found]
        if missing:
            raise UserError(f"{folder}/config.pbtxt: version_policy names version(s) {missing} that are not there")
        return {v: found[v] for v in sorted(set(policy.specific.versions))}
    n = policy.latest.num_versions if which == "latest" and policy.latest.num_versions > 0 else 1
    return {v: found[v] for v in sorted(found)[-n:]}


def scan(repository: Path, follow_links: bool = False) -> list[ModelSource]:
    """Every model folder of the repository, checked; hidden entries and loose files are skipped. A model folder,
    config.pbtxt, version folder or model file that links to a place outside the repository is refused unless
    `follow_links` (links within it are fine; so is a repository path that is itself a link)."""
    repository = Path(repository)
    if not repository.is_dir():
        raise UserError(
            f"model repository {repository} is not a folder; write one with 'ai4hep export triton RUN --repository "
            f"{repository}'"
        )
    root = repository.resolve()
    sources = []
    for folder in sorted(repository.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        if not valid_name(folder.name):
            why = "a reserved name" if folder.name in RESERVED else NAME_RULE
            raise UserError(f"model folder '{folder.name}' in {repository}: {why}; rename it")
        config_file = folder / "config.pbtxt"
        if not follow_links:
            _inside(folder, root, repository)
        if not config_file.is_file():
            raise UserError(f"{folder} has no config.pbtxt; write the model with 'ai4hep export triton'")
        if not follow_links:
            _inside(config_file, root, repository)
        config = parse_config(config_file, folder.name)
        versions = _versions(folder, config)
        if not follow_links:
            for model_file in versions.values():
                _inside(model_file.parent, root, repository)
                _inside(model_file, root, repository)
        sources.append(ModelSource(folder.name, config, versions))
    if not sources:
        raise UserError(f"model repository {repository} holds no models; add one with 'ai4hep export triton'")
    return sources
