// Copies Pythia's event record into flat columns, through the member functions the `pythia8mc` wheel exports.
//
// The wheel ships no C++ headers, so nothing here knows Pythia's classes: Python resolves the exported accessors
// (Event::size, Event::operator[], Particle::id, ...) by their mangled names and passes their addresses in, and this
// file calls them as the Itanium C++ ABI lays out a non-virtual member function: a free function whose first argument
// is the object. Pythia's nextBatch builds an awkward record of all 14 fields of every particle and costs 5-15% of
// the event generation on top of next(); these 12 columns cost ~1%, less where ai4hep_read_event_layout applies.
// pythia.py checks the calls on a Vec4 it made itself before trusting them, and falls back to nextBatch otherwise.
#include <cstdint>
#include <cstring>

namespace {

using SizeFn = int (*)(const void*);
using AtFn = const void* (*)(void*, int);
using IntFn = int (*)(const void*);
using DoubleFn = double (*)(const void*);
using BoolFn = bool (*)(const void*);

// The order of the addresses Python passes in (pythia.py's _ACCESSORS).
enum Accessor {
  kSize, kAt, kId, kStatus, kMother1, kDaughter1, kDaughter2, kPx, kPy, kPz, kE, kXProd, kYProd, kZProd,
  kHasVertex, kCount
};

// The order of the output columns: five int32 columns, then seven float64 ones.
enum Column { cId, cStatus, cMother1, cDaughter1, cDaughter2, cPx, cPy, cPz, cE, cVx, cVy, cVz, cCount };

}  // namespace

extern "C" {

// Appends the particles of `event` (an Event*) to the columns at row `offset`. Returns the number of particles, or
// minus that number, with nothing written, when they do not fit into `capacity` rows.
int64_t ai4hep_read_event(void* const* fns, void* event, void* const* cols, int64_t offset, int64_t capacity) {
  const int n = reinterpret_cast<SizeFn>(fns[kSize])(event);
  if (offset + n > capacity) return -static_cast<int64_t>(n);
  const auto at = reinterpret_cast<AtFn>(fns[kAt]);
  const IntFn ints[5] = {reinterpret_cast<IntFn>(fns[kId]), reinterpret_cast<IntFn>(fns[kStatus]),
                         reinterpret_cast<IntFn>(fns[kMother1]), reinterpret_cast<IntFn>(fns[kDaughter1]),
                         reinterpret_cast<IntFn>(fns[kDaughter2])};
  const DoubleFn momentum[4] = {reinterpret_cast<DoubleFn>(fns[kPx]), reinterpret_cast<DoubleFn>(fns[kPy]),
                                reinterpret_cast<DoubleFn>(fns[kPz]), reinterpret_cast<DoubleFn>(fns[kE])};
  const DoubleFn vertex[3] = {reinterpret_cast<DoubleFn>(fns[kXProd]), reinterpret_cast<DoubleFn>(fns[kYProd]),
                              reinterpret_cast<DoubleFn>(fns[kZProd])};
  const auto has_vertex = reinterpret_cast<BoolFn>(fns[kHasVertex]);
  for (int i = 0; i < n; ++i) {
    const void* particle = at(event, i);
    const int64_t row = offset + i;
    for (int c = 0; c < 5; ++c) static_cast<int32_t*>(cols[cId + c])[row] = ints[c](particle);
    for (int c = 0; c < 4; ++c) static_cast<double*>(cols[cPx + c])[row] = momentum[c](particle);
    // nextBatch stores no production vertex (None) for such particles; ai4hep stores the origin for them
    const bool vertexed = has_vertex(particle);
    for (int c = 0; c < 3; ++c) static_cast<double*>(cols[cVx + c])[row] = vertexed ? vertex[c](particle) : 0.0;
  }
  return n;
}

// The same columns read straight from the particles' memory: Event keeps its particles in one vector, so particle i
// lies at event[0] + i * layout[0], and column c at byte layout[1 + c] of it. pythia.py finds these numbers on probe
// particles with distinctive values it made itself; this saves the ~12 out-of-line accessor calls per particle (half
// of the reader's cost). Returns INT64_MIN when the particles are not where the layout says (callers then fall back
// to the accessors).
int64_t ai4hep_read_event_layout(void* const* fns, void* event, const int64_t* layout, void* const* cols,
                                 int64_t offset, int64_t capacity) {
  const int n = reinterpret_cast<SizeFn>(fns[kSize])(event);
  if (offset + n > capacity) return -static_cast<int64_t>(n);
  if (n == 0) return 0;
  const auto at = reinterpret_cast<AtFn>(fns[kAt]);
  const auto has_vertex = reinterpret_cast<BoolFn>(fns[kHasVertex]);
  const int64_t stride = layout[0];
  const char* base = static_cast<const char*>(at(event, 0));
  if (static_cast<const char*>(at(event, n - 1)) != base + (n - 1) * stride) return INT64_MIN;
  for (int i = 0; i < n; ++i) {
    const char* particle = base + i * stride;
    const int64_t row = offset + i;
    for (int c = cId; c < cPx; ++c) {
      std::memcpy(static_cast<int32_t*>(cols[c]) + row, particle + layout[1 + c], sizeof(int32_t));
    }
    for (int c = cPx; c < cVx; ++c) {
      std::memcpy(static_cast<double*>(cols[c]) + row, particle + layout[1 + c], sizeof(double));
    }
    const bool vertexed = has_vertex(particle);
    for (int c = cVx; c < cCount; ++c) {
      double value = 0.0;
      if (vertexed) std::memcpy(&value, particle + layout[1 + c], sizeof(double));
      static_cast<double*>(cols[c])[row] = value;
    }
  }
  return n;
}

// The address of particle i of an Event, for pythia.py's layout probe.
const void* ai4hep_particle_address(void* const* fns, void* event, int i) {
  return reinterpret_cast<AtFn>(fns[kAt])(event, i);
}

// Calls a `double f() const` accessor on an object: pythia.py's check of the calling convention on a known Vec4.
double ai4hep_call_double(void* fn, const void* object) { return reinterpret_cast<DoubleFn>(fn)(object); }

int ai4hep_record_columns() { return cCount; }
int ai4hep_record_accessors() { return kCount; }

}  // extern "C"
