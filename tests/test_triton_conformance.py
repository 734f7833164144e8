"""`ai4hep serve` answers like a real Triton Inference Server: the same tritonclient calls against both, compared.

The reference is the tritonserver bundled with nvidia-pytriton (Python backend only, so the same ONNX file runs there
in onnxruntime behind a bound callable: benchmarks/peers/pytriton_onnx.py). It lives in its own virtualenv (pytriton
pins numpy<2), made by `benchmarks/peers/setup.sh --triton`; without it these tests are skipped. Marked `optional`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from ai4hep.cli import main
from ai4hep.run import TrainedRun
from tests.test_serve import _train

ROOT = Path(__file__).resolve().parents[1]
PYTRITON = Path(os.environ.get("AI4HEP_PYTRITON_VENV", ROOT / "bench-data" / "peers" / "pytriton-venv"))
MODELS = ("mlp", "dips")

pytestmark = [
    pytest.mark.optional,
    pytest.mark.skipif(
        not (PYTRITON / "bin" / "python").exists(),
        reason=f"no pytriton virtualenv at {PYTRITON} (make it with benchmarks/peers/setup.sh --triton)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A server subprocess on two free loopback ports, ready when its HTTP side says every model is ready."""

    def __init__(self, cmd: list[str], http: int, grpc: int, log: Path, env: dict | None = None) -> None:
        self.http, self.grpc, self.log = f"127.0.0.1:{http}", f"127.0.0.1:{grpc}", log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            if all(self._ok(f"/v2/models/{m}/ready") for m in MODELS):
                return
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"{cmd[:3]} did not start:\n{log.read_text(errors='replace')[-3000:]}")

    def _ok(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http}{path}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        for sig in (signal.SIGINT, signal.SIGKILL):
            if self.proc.poll() is not None:
                return
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def setup(hlf5_dir: Path, flavour_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Both servers on the same ONNX files (an MLP; DIPS with jet, objects and a bool mask), and real test jets."""
    tmp = tmp_path_factory.mktemp("conformance")
    runs = {
        "mlp": _train("hlf5_mlp.yaml", hlf5_dir, tmp / "mlp", {"hidden": [16, 16]}),
        "dips": _train("flavour_dips.yaml", flavour_dir, tmp / "dips", {"phi": [16, 16], "f": [16]}),
    }
    repo = tmp / "repository"
    for name, run in runs.items():
        assert main(["export", "triton", str(run), "--repository", str(repo), "--name", name]) == 0
    feeds = {}
    for name, run in runs.items():
        tagger = TrainedRun(run)
        batch = next(iter(tagger.stream(tagger.test_files())))
        feeds[name] = {k: np.ascontiguousarray(batch[k][:5]) for k in (*tagger.model.inputs, *tagger.model.extras)}
    ports = [_free_port() for _ in range(4)]
    ours = Process(
        [sys.executable, "-m", "ai4hep.cli", "serve", "--repository", str(repo), "--http-port", str(ports[0]),
         "--grpc-port", str(ports[1]), "--threads", "1"],
        ports[0], ports[1], tmp / "ai4hep.log",
    )  # fmt: skip
    try:
        models = [a for m in MODELS for a in ("--model", f"{m}={repo / m / '1' / 'model.onnx'}")]
        triton = Process(
            [str(PYTRITON / "bin" / "python"), str(ROOT / "benchmarks" / "peers" / "pytriton_onnx.py"), *models,
             "--http-port", str(ports[2]), "--grpc-port", str(ports[3])],
            ports[2], ports[3], tmp / "triton.log",
            {"LD_LIBRARY_PATH": sysconfig.get_config_var("LIBDIR") or ""},
        )  # fmt: skip
    except BaseException:
        ours.stop()
        raise
    yield {"ai4hep": ours, "triton": triton, "feeds": feeds}
    ours.stop()
    triton.stop()


def _clients(server: Process) -> tuple:
    return thttp.InferenceServerClient(server.http), tgrpc.InferenceServerClient(server.grpc)


def _infer(server: Process, protocol: str, model: str, feed: dict[str, np.ndarray], binary: bool = True) -> dict:
    http, grpc = _clients(server)
    lib, client = (thttp, http) if protocol == "http" else (tgrpc, grpc)
    inputs = []
    for name, array in feed.items():
        x = lib.InferInput(name, list(array.shape), "BOOL" if array.dtype == np.bool_ else "FP32")
        if protocol == "http":
            x.set_data_from_numpy(array, binary_data=binary)
        else:
            x.set_data_from_numpy(array)
        inputs.append(x)
    outputs = [lib.InferRequestedOutput("probs", binary_data=binary)] if protocol == "http" else None
    result = client.infer(model, inputs, outputs=outputs)
    response = result.get_response()
    names = [o["name"] for o in response["outputs"]] if protocol == "http" else [o.name for o in response.outputs]
    return {n: result.as_numpy(n) for n in names}


def test_health_and_server_metadata(setup) -> None:
    for name in ("ai4hep", "triton"):
        http, grpc = _clients(setup[name])
        assert http.is_server_live() and http.is_server_ready() and grpc.is_server_live() and grpc.is_server_ready()
        assert all(http.is_model_ready(m) and grpc.is_model_ready(m) for m in MODELS)
        meta = http.get_server_metadata()
        assert {"name", "version", "extensions"} <= set(meta) and "binary_tensor_data" in meta["extensions"]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_unknown_model_is_not_ready(setup, protocol: str) -> None:
    """Triton answers readiness of a model it does not have with "not ready" (gRPC: ready=false, no error status)."""
    for name in ("ai4hep", "triton"):
        client = _clients(setup[name])[protocol == "grpc"]
        assert client.is_model_ready("no_such_model") is False, name


@pytest.mark.parametrize("model", MODELS)
def test_model_metadata_agrees(setup, model: str) -> None:
    """Tensor names, datatypes and shapes (batch axis -1 first) as Triton reports them, over HTTP and gRPC."""
    got = {}
    for name in ("ai4hep", "triton"):
        http, grpc = _clients(setup[name])
        meta, gmeta = http.get_model_metadata(model), grpc.get_model_metadata(model)
        tensors = [(t["name"], t["datatype"], t["shape"]) for t in (*meta["inputs"], *meta["outputs"])]
        assert tensors == [(t.name, t.datatype, list(t.shape)) for t in (*gmeta.inputs, *gmeta.outputs)]
        assert meta["name"] == model and "1" in meta["versions"]
        got[name] = tensors
    assert got["ai4hep"] == got["triton"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("protocol,binary", [("http", True), ("http", False), ("grpc", True)])
def test_inference_agrees(setup, model: str, protocol: str, binary: bool) -> None:
    feed = setup["feeds"][model]
    ours = _infer(setup["ai4hep"], protocol, model, feed, binary)
    theirs = _infer(setup["triton"], protocol, model, feed, binary)
    assert list(ours) == list(theirs) == ["probs"]
    for name, want in theirs.items():
        assert ours[name].dtype == want.dtype and ours[name].shape == want.shape == (5, want.shape[1])
        np.testing.assert_allclose(ours[name], want, atol=1e-5)


def _bad_requests(feeds: dict[str, dict[str, np.ndarray]]) -> dict[str, tuple[str, dict[str, np.ndarray], str]]:
    """case -> (model, inputs by name, datatype declared for float inputs)."""
    jet = feeds["mlp"]["jet"]
    return {
        "unknown model": ("no_such_model", {"jet": jet}, "FP32"),
        "unknown input": ("mlp", {"nope": jet}, "FP32"),
        "missing input": ("dips", {"jet": feeds["dips"]["jet"]}, "FP32"),
        "wrong datatype": ("mlp", {"jet": jet.astype(np.float64)}, "FP64"),
        "wrong shape": ("mlp", {"jet": np.concatenate([jet, jet[:, :1]], axis=1)}, "FP32"),
    }


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bad_requests_fail_on_both(setup, protocol: str) -> None:
    """What Triton refuses, ai4hep refuses too, with an error the client decodes (and the same gRPC status)."""
    for case, (model, feed, dtype) in _bad_requests(setup["feeds"]).items():
        codes = {}
        for name in ("ai4hep", "triton"):
            http, grpc = _clients(setup[name])
            lib, client = (thttp, http) if protocol == "http" else (tgrpc, grpc)
            inputs = []
            for n, a in feed.items():
                x = lib.InferInput(n, list(a.shape), "BOOL" if a.dtype == np.bool_ else dtype)
                x.set_data_from_numpy(a)
                inputs.append(x)
            with pytest.raises(InferenceServerException) as err:
                client.infer(model, inputs)
            assert err.value.message(), f"{name}: empty error for {case}"
            codes[name] = err.value.status()
        if protocol == "grpc":
            assert codes["ai4hep"] == codes["triton"], f"{case}: gRPC status {codes}"
