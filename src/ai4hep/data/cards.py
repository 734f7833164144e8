"""Named datasets: each card holds the full generator configuration, so a file's card alone reproduces it.

A card is versioned: any change that alters the generated arrays must bump `version`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ai4hep.data.labels import FLAVOURS
from ai4hep.errors import UserError

# Settings every dataset shares: 14 TeV pp, quiet, particles with c*tau > 10 mm stable (K0S, Lambda, ...),
# the usual LHC generator-level convention; without it light jets look displaced.
COMMON_SETTINGS: tuple[str, ...] = (
    "Beams:eCM = 14000",
    "Print:quiet = on",
    "Next:numberCount = 0",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
)

# Flavour tagging needs the long-lived strange hadrons to decay in flight, as in a real tracker: their displaced tracks
# (K0S, Lambda, Sigma, Xi, Omega) are what light jets fake b-jets with, and the "other secondary" track origin. They
# decay inside the inner-detector volume (R < 1 m, |z| < 3 m); charged pions and kaons and K0L stay stable.
FLAVOUR_SETTINGS: tuple[str, ...] = (
    *(s for s in COMMON_SETTINGS if not s.startswith("ParticleDecays:tau0Max")),
    "ParticleDecays:tau0Max = 1000",
    "ParticleDecays:limitCylinder = on",
    "ParticleDecays:xyMax = 1000",
    "ParticleDecays:zMax = 3000",
)

_HADRONIC_W = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")
_HIGGS_JET = (
    "HiggsSM:gg2Hg(l:t) = on",
    "HiggsSM:qg2Hq(l:t) = on",
    "HiggsSM:qqbar2Hg(l:t) = on",
    "25:onMode = off",
)
_W_JET = ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on")
_Z_JET = ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on", "WeakZ0:gmZmode = 2")
_HADRONIC_Z = ("23:onMode = off", "23:onIfAny = 1 2 3 4 5")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Truth(_Strict):
    """How a jet is matched to the truth that defines its label.

    - none: every selected jet of the process is kept (QCD backgrounds).
    - resonance: the last copy of |pdg| and all its visible decay products (quarks, gluons, charged leptons,
      following intermediate W/Z/t) must lie within dR < match_r of the jet; `products` names the decay
      ("bqq", "blv", "qq", "bb", "cc", "gg", "qqqq", "lvqq") and is checked.
    - parton: the jet lies within dR < match_r of an outgoing hard-process parton of type `parton`.
    - hadron: the b / c / light label comes from weakly decaying hadrons within dR < match_r (flavour tagging).
    """

    kind: Literal["none", "resonance", "parton", "hadron"] = "none"
    pdg: int | None = None
    products: str | None = None
    parton: Literal["q", "g"] | None = None
    match_r: float | None = None  # defaults to the jet radius (0.3 for hadron labels)


class Process(_Strict):
    name: str
    settings: tuple[str, ...]
    fraction: float = Field(gt=0, le=1)
    label: int | None = None  # None: taken from the truth (hadron labels)
    truth: Truth = Truth()


class JetSelection(_Strict):
    radius: float
    pt_min: float
    pt_max: float | None = None
    abs_eta_max: float
    use_rapidity: bool = False  # cut on |y| instead of |eta|
    max_jets_per_event: int = 2


class TrackSelection(_Strict):
    """Cuts on the `tracks` array (not the constituents): ATLAS's flavour-tagging track selection (GN2, arXiv
    2505.19689), which keeps displaced secondaries but drops tracks far from the primary vertex."""

    abs_d0_max: float  # mm
    abs_z0sintheta_max: float  # mm


class DatasetCard(_Strict):
    name: str
    version: int
    description: str
    reference: str
    classes: tuple[str, ...]
    processes: tuple[Process, ...]
    jets: JetSelection
    max_consts: int
    max_tracks: int = 0
    track_selection: TrackSelection | None = None
    features: Literal["standard", "hlf5"] = "standard"
    common_settings: tuple[str, ...] = COMMON_SETTINGS

    def to_json(self) -> str:
        card = self.model_dump(mode="json")
        if card["track_selection"] is None:  # added in flavour v2: unset, older cards keep their digests
            del card["track_selection"]
        return json.dumps(card, sort_keys=True)

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def _resonance(name: str, settings: tuple[str, ...], pdg: int, products: str, label: int, fraction: float) -> Process:
    return Process(
        name=name,
        settings=settings,
        fraction=fraction,
        label=label,
        truth=Truth(kind="resonance", pdg=pdg, products=products),
    )


def _parton(name: str, settings: tuple[str, ...], parton: str, label: int, fraction: float) -> Process:
    return Process(
        name=name, settings=settings, fraction=fraction, label=label, truth=Truth(kind="parton", parton=parton)
    )


def _card_top() -> DatasetCard:
    return DatasetCard(
        name="top",
        version=3,
        description="All-hadronic ttbar (top jets) vs QCD dijets, 14 TeV, anti-kT R=0.8, 550<pT<650 GeV, |eta|<2",
        reference="Kasieczka et al., The Machine Learning Landscape of Top Taggers, arXiv:1902.09914",
        classes=("qcd", "top"),
        processes=(
            _resonance("ttbar_hadronic", (*_TTBAR, *_HADRONIC_W, "PhaseSpace:pTHatMin = 500"), 6, "bqq", 1, 0.5),
            Process(name="qcd", settings=("HardQCD:all = on", "PhaseSpace:pTHatMin = 500"), fraction=0.5, label=0),
        ),
        jets=JetSelection(radius=0.8, pt_min=550.0, pt_max=650.0, abs_eta_max=2.0),
        max_consts=200,
    )


def _card_qg() -> DatasetCard:
    z_nunu = (*_Z_JET[2:], "23:onMode = off", "23:onIfAny = 12 14 16", "PhaseSpace:pTHatMin = 450")
    return DatasetCard(
        name="qg",
        version=3,
        description="Quark vs gluon jets from Z(->nunu)+jet, 14 TeV, anti-kT R=0.4, 500<pT<550 GeV, |y|<1.7",
        reference="Komiske, Metodiev, Thaler, Energy Flow Networks, arXiv:1810.05165",
        classes=("gluon", "quark"),
        processes=(
            _parton("z_gluon", ("WeakBosonAndParton:qqbar2gmZg = on", *z_nunu), "g", 0, 0.5),
            _parton("z_quark", ("WeakBosonAndParton:qg2gmZq = on", *z_nunu), "q", 1, 0.5),
        ),
        jets=JetSelection(
            radius=0.4, pt_min=500.0, pt_max=550.0, abs_eta_max=1.7, use_rapidity=True, max_jets_per_event=1
        ),
        max_consts=150,
    )


def _card_jetclass() -> DatasetCard:
    pthat = "PhaseSpace:pTHatMin = 450"

    def higgs(name: str, label: int, decay: tuple[str, ...], products: str) -> Process:
        return Process(
            name=name,
            settings=(*_HIGGS_JET, *decay, pthat),
            fraction=0.1,
            label=label,
            truth=Truth(kind="resonance", pdg=25, products=products),
        )

    return DatasetCard(
        name="jetclass",
        version=3,
        description="10 jet classes (H->bb, cc, gg, 4q, lvqq'; t->bqq', blv; W->qq'; Z->qq; QCD), 14 TeV, "
        "anti-kT R=0.8, 500<pT<1000 GeV, |eta|<2",
        reference="Qu, Li, Qian, Particle Transformer for Jet Tagging (JetClass), arXiv:2202.03772",
        classes=("qcd", "hbb", "hcc", "hgg", "h4q", "hqql", "zqq", "wqq", "tbqq", "tbl"),
        processes=(
            Process(name="qcd", settings=("HardQCD:all = on", pthat), fraction=0.1, label=0),
            higgs("h_bb", 1, ("25:onIfMatch = 5 -5",), "bb"),
            higgs("h_cc", 2, ("25:onIfMatch = 4 -4",), "cc"),
            higgs("h_gg", 3, ("25:onIfMatch = 21 21",), "gg"),
            higgs("h_4q", 4, ("25:onIfMatch = 24 -24", *_HADRONIC_W), "qqqq"),
            higgs("h_lvqq", 5, ("25:onIfMatch = 24 -24",), "lvqq"),
            _resonance("z_qq", (*_Z_JET, *_HADRONIC_Z, pthat), 23, "qq", 6, 0.1),
            _resonance("w_qq", (*_W_JET, *_HADRONIC_W, pthat), 24, "qq", 7, 0.1),
            _resonance("t_bqq", (*_TTBAR, *_HADRONIC_W, pthat), 6, "bqq", 8, 0.1),
            _resonance("t_blv", (*_TTBAR, "24:onMode = off", "24:onIfAny = 11 13 15", pthat), 6, "blv", 9, 0.1),
        ),
        jets=JetSelection(radius=0.8, pt_min=500.0, pt_max=1000.0, abs_eta_max=2.0),
        max_consts=128,
    )


def _card_hlf5() -> DatasetCard:
    pthat = "PhaseSpace:pTHatMin = 850"
    return DatasetCard(
        name="hlf5",
        version=3,
        description="5 classes (g, q, W, Z, t) with the 16 high-level substructure features of the hls4ml jet "
        "dataset, 14 TeV, anti-kT R=0.8, 900<pT<1100 GeV, |eta|<2",
        reference="Duarte et al., Fast inference of deep neural networks in FPGAs (hls4ml), arXiv:1804.06913",
        classes=("g", "q", "w", "z", "t"),
        processes=(
            _parton("gluon", ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on", pthat), "g", 0, 0.2),
            _parton("quark", ("HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on", pthat), "q", 1, 0.2),
            _resonance("w_qq", (*_W_JET, *_HADRONIC_W, pthat), 24, "qq", 2, 0.2),
            _resonance("z_qq", (*_Z_JET, *_HADRONIC_Z, pthat), 23, "qq", 3, 0.2),
            _resonance("t_bqq", (*_TTBAR, *_HADRONIC_W, pthat), 6, "bqq", 4, 0.2),
        ),
        jets=JetSelection(radius=0.8, pt_min=900.0, pt_max=1100.0, abs_eta_max=2.0),
        max_consts=150,
        features="hlf5",
    )


def _card_flavour() -> DatasetCard:
    hadron = Truth(kind="hadron", match_r=0.3)
    return DatasetCard(
        name="flavour",
        version=4,
        description="b / c / light jets from ttbar and multijets, 14 TeV, anti-kT R=0.4, pT>20 GeV, |eta|<2.5, "
        "up to 40 tracks with impact parameters, track-origin and truth-vertex labels; K0S, Lambda and other "
        "long-lived strange hadrons decay in flight",
        reference="ATLAS GN2, arXiv:2505.19689",
        classes=FLAVOURS,
        processes=(
            Process(name="ttbar", settings=_TTBAR, fraction=0.5, truth=hadron),
            Process(
                name="heavy_flavour_dijet",
                settings=("HardQCD:hardbbbar = on", "HardQCD:hardccbar = on", "PhaseSpace:pTHatMin = 30"),
                fraction=0.25,
                truth=hadron,
            ),
            Process(
                name="multijet",
                settings=("HardQCD:all = on", "PhaseSpace:pTHatMin = 30"),
                fraction=0.25,
                truth=hadron,
            ),
        ),
        jets=JetSelection(radius=0.4, pt_min=20.0, abs_eta_max=2.5, max_jets_per_event=4),
        max_consts=60,
        max_tracks=40,
        track_selection=TrackSelection(abs_d0_max=3.5, abs_z0sintheta_max=5.0),
        common_settings=FLAVOUR_SETTINGS,
    )


CARDS: dict[str, DatasetCard] = {
    c.name: c for c in (_card_top(), _card_qg(), _card_jetclass(), _card_flavour(), _card_hlf5())
}



def get_card(name: str) -> DatasetCard:
    if name not in CARDS:
        raise UserError(f"unknown dataset '{name}'; valid names: {', '.join(CARDS)}")
    return CARDS[name]


def task_of(card: dict) -> str:
    """The task a dataset's runs are evaluated as: the card's own `task` where it names one, else by its classes
    (b / c / light flavour tagging, binary or multi-class jet tagging)."""
    if card.get("task"):
        return str(card["task"])
    classes = tuple(card["classes"])
    if classes == FLAVOURS:
        return "flavour"
    return "binary" if len(classes) == 2 else "multiclass"
