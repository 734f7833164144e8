"""`ai4hep bench report`: the static site's files and leaderboard order, then the page as headless Chromium renders it
(DOM after the script ran, the sort on `?sort=`, a screenshot).

Chromium is Debian's package (`make test` installs it); without the binary only the Chromium checks are skipped.
Set AI4HEP_SCREENSHOT=1 to also keep a copy of the screenshot in out/report-screenshot.png.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from ai4hep.bench.record import Cost, Record, Spread
from ai4hep.bench.report import write_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
PNG = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def _spread(values: list[float], error: float | None = None) -> Spread:
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return Spread(mean=mean, std=std, values=values, error=error)


def _env(torch: str, git: str) -> dict:
    return {
        "packages": {"ai4hep": "0.3.0", "torch": torch, "numpy": "2.1.3", "lightgbm": "4.5.0"},
        "python": "3.11.2",
        "git": git,
        "cpu": "AMD EPYC 7B13",
        "cores": 2,
    }


def _record(rid: str, task: str, model: str, metrics: dict[str, Spread], primary: str, **kw) -> Record:
    seeds = kw.pop("seeds", [1, 2, 3])
    return Record(
        id=rid,
        created=kw.pop("created", "2025-05-02T10:15:00+00:00"),
        suite="standard",
        task=task,
        model=model,
        config_name=f"{task}_{model}",
        budget="small",
        seeds=seeds,
        metrics=metrics,
        primary_metric=primary,
        cost=Cost(
            train_jets_per_s=kw.pop("train", 5200.0),
            infer_jets_per_s=kw.pop("infer", 48000.0),
            peak_rss_mb=812.0,
            cpu_time_s=93.4,
            wall_time_s=51.2,
            energy_j=1401.0,
            energy_method="model: 93.4 s x 15 W",
        ),
        environment=kw.pop("environment", _env("2.13.0", "0123456789abcdef0123456789abcdef01234567")),
        dataset_hash="sha256:" + "ab" * 16,
        dataset_card={"name": task, "jets": 600, "generator": "Pythia 8.312", "classes": ["bkg", "sig"]},
        config={"model": {"name": model, "hidden": 64}, "train": {"epochs": 2, "lr": 1e-3, "seed": 1}},
        artifacts=kw.pop("artifacts", ""),
        ai4hep_version="0.3.0",
    )


def _top(rid: str, model: str, auc: list[float], rejection: list[float], error: float, **kw) -> Record:
    accuracy = [a - 0.07 for a in auc]
    metrics = {"auc": _spread(auc), "rejection@0.3": _spread(rejection, error), "accuracy": _spread(accuracy)}
    return _record(rid, "top", model, metrics, "auc", **kw)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[Record]:
    """Top: three models with known AUC order (ParticleNet > PFN > BDT, given out of order); flavour: one with plots."""
    art = tmp_path_factory.mktemp("artifacts")
    (art / "plots").mkdir()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.semilogy([0.3, 0.5, 0.7, 0.9], [900, 210, 45, 8], label="GN2 small")
    ax.set_xlabel("b efficiency")
    ax.set_ylabel("light rejection")
    ax.legend()
    fig.savefig(art / "plots" / "roc.png", dpi=60)
    plt.close(fig)
    flavour = {"light_rejection@0.7": _spread([120.0, 131.0], error=4.0), "c_rejection@0.7": _spread([9.1, 9.4])}
    return [
        _top("a1" * 16, "bdt", [0.951, 0.953, 0.950], [81.0, 84.0, 79.0], 3.1, train=91000.0),
        _top("b2" * 16, "particlenet", [0.982, 0.981, 0.983], [410.0, 395.0, 422.0], 12.0, train=1800.0),
        _top(
            "c3" * 16,
            "pfn",
            [0.970, 0.972, 0.969],
            [190.0, 201.0, 188.0],
            7.5,
            train=6400.0,
            environment=_env("2.12.1", "fedcba9876543210fedcba9876543210fedcba98-dirty"),
            created="2025-04-20T08:00:00+00:00",
        ),
        _record("d4" * 16, "flavour", "gn2", flavour, "light_rejection@0.7", seeds=[1, 2], artifacts=str(art)),
    ]


class _Page(HTMLParser):
    """Per table id its body rows' data-model in order, the column keys of its header, and every <img> by id."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.keys: dict[str, list[str]] = {}
        self.images: dict[str, str] = {}
        self.table: str | None = None
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self.table = a["id"]
            self.rows[self.table], self.keys[self.table] = [], []
        elif tag == "tbody":
            self.in_body = True
        elif tag == "th" and self.table and not self.in_body and a.get("data-key"):
            self.keys[self.table].append(a["data-key"])
        elif tag == "tr" and self.table and self.in_body and "data-model" in a:
            self.rows[self.table].append(a["data-model"])
        elif tag == "img":
            self.images[a.get("id") or a.get("src") or ""] = a.get("src") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.table = None


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def site(records: list[Record], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "site"
    out.mkdir()
    (out / "stale.html").write_text("from an older report")
    index = write_report(records, out)
    assert index == out / "index.html"
    return out


def test_site_files_and_leaderboard_order(site: Path, records: list[Record]) -> None:
    assert not (site / "stale.html").exists(), "the old site is replaced whole"
    assert not [p for p in site.parent.iterdir() if p.name.startswith(".site.")], "no temporary folders left"
    for name in ["index.html", "environment.html", "plots/top.png", "plots/flavour.png"]:
        assert (site / name).is_file(), name
    for r in records:
        assert (site / "records" / f"{r.id}.html").is_file()
    assert (site / "records" / ("d4" * 16) / "plots" / "roc.png").read_bytes()[:8] == PNG

    page = _parse((site / "index.html").read_text())
    assert page.rows["leaderboard-top"] == ["particlenet", "pfn", "bdt"]
    assert page.rows["leaderboard-flavour"] == ["gn2"]
    assert page.keys["leaderboard-top"][:6] == ["rank", "model", "config", "budget", "seeds", "auc"]
    assert {"rejection@0.3", "accuracy", "train_jets_per_s", "energy_j", "git"} <= set(page.keys["leaderboard-top"])
    assert page.images["plot-top"] == "plots/top.png"
    html = (site / "index.html").read_text()
    assert "0.982 ± 0.001" in html and "stat. ± 12" in html and 'href="records/' + "b2" * 16 + '.html"' in html

    detail = (site / "records" / f"{'d4' * 16}.html").read_text()
    assert "light_rejection@0.7" in detail and "Pythia 8.312" in detail and "seed 2" in detail
    assert _parse(detail).images[f"{'d4' * 16}/plots/roc.png"]
    env = (site / "environment.html").read_text()
    assert "2.12.1" in env and "2.13.0" in env and "2 distinct environments" in env


def test_text_is_escaped(records: list[Record], tmp_path: Path) -> None:
    evil = records[0].model_copy(update={"model": "<script>alert(1)</script>", "config_name": "a&b"})
    write_report([evil], tmp_path / "site")
    text = (tmp_path / "site" / "index.html").read_text()
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text and "a&amp;b" in text


def test_failed_build_keeps_the_old_site(records: list[Record], tmp_path: Path) -> None:
    out = tmp_path / "site"
    write_report(records, out)
    broken = records[-1].model_copy(update={"metrics": None})  # fails while the new site is being written
    with pytest.raises(Exception):  # noqa: B017
        write_report([broken], out)
    assert _parse((out / "index.html").read_text()).rows["leaderboard-top"] == ["particlenet", "pfn", "bdt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def _chromium(tmp: Path, *args: str) -> str:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (make test installs Debian's chromium package)")
def test_chromium_renders_and_sorts(site: Path, tmp_path: Path) -> None:
    url = (site / "index.html").as_uri()
    dom = _parse(_chromium(tmp_path, "--dump-dom", url))
    assert dom.rows["leaderboard-top"] == ["particlenet", "pfn", "bdt"]
    assert dom.rows["leaderboard-flavour"] == ["gn2"]
    for task in ("top", "flavour"):
        src = dom.images[f"plot-{task}"]
        assert (site / src).read_bytes()[:8] == PNG

    # The page's script sorts on load by ?sort=<column key>: by training throughput the BDT comes first.
    flags = ["--run-all-compositor-stages-before-draw", "--virtual-time-budget=3000", "--dump-dom"]
    resorted = _parse(_chromium(tmp_path, *flags, url + "?sort=train_jets_per_s"))
    assert resorted.rows["leaderboard-top"] == ["bdt", "pfn", "particlenet"]
    by_name = _parse(_chromium(tmp_path, *flags, url + "?sort=model&order=desc"))
    assert by_name.rows["leaderboard-top"] == ["pfn", "particlenet", "bdt"]

    shot = tmp_path / "leaderboard.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", url)
    data = shot.read_bytes()
    assert data[:8] == PNG and len(data) > 10_000
    print(f"report screenshot: {shot}")
    if os.environ.get("AI4HEP_SCREENSHOT"):
        keep = REPO / "out" / "report-screenshot.png"
        keep.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, keep)
        print(f"report screenshot kept: {keep}")
