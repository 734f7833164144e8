// Batch clustering and substructure with FastJet's C++ (the libraries shipped in the `fastjet` wheel).
//
// A plain C ABI, called through ctypes on numpy buffers: one call per batch of events or jets, so no Python object is
// made per particle or per jet. The Python fallback in substructure.py / jets.py computes the same quantities through
// FastJet's vectorised Python interface; tests compare the two.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "fastjet/ClusterSequence.hh"
#include "fastjet/contrib/Nsubjettiness.hh"
#include "fastjet/contrib/SoftDrop.hh"

using fastjet::ClusterSequence;
using fastjet::JetDefinition;
using fastjet::PseudoJet;

namespace {

// The generalised energy correlators of the hls4ml set in one pass over pairs and triplets (fjcontrib's
// EnergyCorrelatorGeneralized computes each one in its own O(n^3) pass): z_i = pT_i / sum_j pT_j, angles dR in (y, phi),
// 1e2 = sum z_i z_j dR^b; 1e3 = sum z_i z_j z_k min(dR)^b; 2e3 = sum z_i z_j z_k (product of the two smallest dR)^b.
void generalized_ecfs(const std::vector<PseudoJet>& particles, double jet_pt, double* out) {
  const size_t n = particles.size();
  std::vector<double> z(n), dr(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) z[i] = particles[i].perp() / jet_pt;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i + 1; j < n; ++j) dr[i * n + j] = dr[j * n + i] = std::sqrt(particles[i].squared_distance(particles[j]));
  double e2_1 = 0, e2_2 = 0, e3min_1 = 0, e3min_2 = 0, e3two_1 = 0, e3two_2 = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      const double zij = z[i] * z[j], dij = dr[i * n + j];
      e2_1 += zij * dij;
      e2_2 += zij * dij * dij;
      for (size_t k = j + 1; k < n; ++k) {
        double a = dij, b = dr[i * n + k], c = dr[j * n + k];
        if (a > b) std::swap(a, b);
        if (b > c) std::swap(b, c);
        if (a > b) std::swap(a, b);
        const double w = zij * z[k];
        e3min_1 += w * a;
        e3min_2 += w * a * a;
        e3two_1 += w * a * b;
        e3two_2 += w * a * a * b * b;
      }
    }
  }
  out[0] = e2_1; out[1] = e3min_1; out[2] = e3two_1;
  out[3] = e2_2; out[4] = e3min_2; out[5] = e3two_2;
}

}  // namespace

extern "C" {

// anti-kT clustering of every event; jets with pT >= pt_min, in FastJet's inclusive order.
// Outputs: jet four-momenta (px, py, pz, E), event index, constituent offsets and local constituent indices
// (ascending within each jet). Returns the number of jets, or -1 if a capacity was too small.
int64_t ai4hep_cluster(const double* px, const double* py, const double* pz, const double* e, const int64_t* offsets,
                       int64_t n_events, double radius, double pt_min, int64_t jet_capacity, int64_t const_capacity,
                       double* jet_p4, int64_t* jet_evt, int64_t* const_offsets, int64_t* const_local) {
  JetDefinition definition(fastjet::antikt_algorithm, radius);
  int64_t n_jets = 0, n_consts = 0;
  const_offsets[0] = 0;
  std::vector<PseudoJet> particles;
  for (int64_t ev = 0; ev < n_events; ++ev) {
    particles.clear();
    for (int64_t i = offsets[ev]; i < offsets[ev + 1]; ++i) {
      PseudoJet p(px[i], py[i], pz[i], e[i]);
      p.set_user_index(static_cast<int>(i - offsets[ev]));
      particles.push_back(p);
    }
    if (particles.empty()) continue;
    ClusterSequence cs(particles, definition);
    for (const PseudoJet& jet : cs.inclusive_jets(pt_min)) {
      std::vector<PseudoJet> members = jet.constituents();
      if (n_jets >= jet_capacity || n_consts + static_cast<int64_t>(members.size()) > const_capacity) return -1;
      std::vector<int64_t> local;
      local.reserve(members.size());
      for (const PseudoJet& m : members) local.push_back(m.user_index());
      std::sort(local.begin(), local.end());
      for (int64_t idx : local) const_local[n_consts++] = idx;
      jet_p4[4 * n_jets + 0] = jet.px();
      jet_p4[4 * n_jets + 1] = jet.py();
      jet_p4[4 * n_jets + 2] = jet.pz();
      jet_p4[4 * n_jets + 3] = jet.E();
      jet_evt[n_jets] = ev;
      const_offsets[++n_jets] = n_consts;
    }
  }
  return n_jets;
}

// Per jet (constituents jets[offsets[j]:offsets[j+1]]): soft-drop mass (C/A reclustering), N-subjettiness tau1..3
// (one-pass kT axes, normalised measure, beta=1, R0), and optionally the generalised energy correlators of the hls4ml
// feature set: ecfg[6*j + k] = {1e2 b=1, 1e3 b=1, 2e3 b=1, 1e2 b=2, 1e3 b=2, 2e3 b=2} (see generalized_ecfs).
void ai4hep_substructure(const double* px, const double* py, const double* pz, const double* e, const int64_t* offsets,
                         int64_t n_jets, double r0, double sd_beta, double sd_zcut, int with_ecfg, double* mass_sd,
                         double* tau, double* ecfg) {
  JetDefinition ca(fastjet::cambridge_algorithm, JetDefinition::max_allowable_R);
  fastjet::contrib::SoftDrop soft_drop(sd_beta, sd_zcut, r0);
  fastjet::contrib::NormalizedMeasure measure(1.0, r0);
  // One-pass minimisation from exclusive-kT seed axes, as OnePass_KT_Axes does, but with the kT clustering run once
  // per jet for N = 1, 2, 3 instead of once per N.
  JetDefinition kt(fastjet::kt_algorithm, JetDefinition::max_allowable_R, fastjet::E_scheme, fastjet::Best);
  fastjet::contrib::Nsubjettiness tau1(1, fastjet::contrib::OnePass_Manual_Axes(), measure);
  fastjet::contrib::Nsubjettiness tau2(2, fastjet::contrib::OnePass_Manual_Axes(), measure);
  fastjet::contrib::Nsubjettiness tau3(3, fastjet::contrib::OnePass_Manual_Axes(), measure);
  std::vector<PseudoJet> particles;
  for (int64_t j = 0; j < n_jets; ++j) {
    particles.clear();
    for (int64_t i = offsets[j]; i < offsets[j + 1]; ++i) particles.emplace_back(px[i], py[i], pz[i], e[i]);
    ClusterSequence cs(particles, ca);
    std::vector<PseudoJet> whole = cs.exclusive_jets(1);
    const PseudoJet& jet = whole[0];
    mass_sd[j] = soft_drop(jet).m();
    ClusterSequence kt_cs(particles, kt);
    fastjet::contrib::Nsubjettiness* taus[3] = {&tau1, &tau2, &tau3};
    for (int n = 1; n <= 3; ++n) {
      std::vector<PseudoJet> seeds = kt_cs.exclusive_jets_up_to(n);
      taus[n - 1]->setAxes(seeds);
      tau[3 * j + n - 1] = (*taus[n - 1])(jet);
    }
    if (with_ecfg) {
      double scalar_pt = 0;
      for (const PseudoJet& p : particles) scalar_pt += p.perp();
      generalized_ecfs(particles, scalar_pt, ecfg + 6 * j);
    }
  }
}
}
