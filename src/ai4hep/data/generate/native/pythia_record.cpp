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
#include <type_traits>

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

// Writes particles 0..n-1 (`particle(i)`) into the columns at row `offset`, each field through `field(particle, c)`
// as int or double for column c. nextBatch stores no production vertex (None) for particles without one; ai4hep
// stores the origin for them.
template <typename Particle, typename Field>
void copy_columns(int n, Particle particle, Field field, BoolFn has_vertex, void* const* cols, int64_t offset) {
  for (int i = 0; i < n; ++i) {
    const void* p = particle(i);
    const int64_t row = offset + i;
    for (int c = cId; c < cPx; ++c) static_cast<int32_t*>(cols[c])[row] = field(p, c, int32_t{});
    for (int c = cPx; c < cVx; ++c) static_cast<double*>(cols[c])[row] = field(p, c, double{});
    const bool vertexed = has_vertex(p);
    for (int c = cVx; c < cCount; ++c) static_cast<double*>(cols[c])[row] = vertexed ? field(p, c, double{}) : 0.0;
  }
}

}  // namespace

extern "C" {

// Appends the particles of `event` (an Event*) to the columns at row `offset`, each field through its accessor.
// Returns the number of particles, or minus that number, with nothing written, when they do not fit into `capacity`
// rows.
int64_t ai4hep_read_event(void* const* fns, void* event, void* const* cols, int64_t offset, int64_t capacity) {
  const int n = reinterpret_cast<SizeFn>(fns[kSize])(event);
  if (offset + n > capacity) return -static_cast<int64_t>(n);
  const auto at = reinterpret_cast<AtFn>(fns[kAt]);
  // the accessors of columns 0..11 follow each other in the Accessor enum, from kId
  const auto field = [fns](const void* p, int c, auto type) {
    using T = decltype(type);
    if constexpr (std::is_same_v<T, int32_t>) return reinterpret_cast<IntFn>(fns[kId + c])(p);
    else return reinterpret_cast<DoubleFn>(fns[kId + c])(p);
  };
  copy_columns(n, [at, event](int i) { return at(event, i); }, field, reinterpret_cast<BoolFn>(fns[kHasVertex]), cols,
               offset);
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
  const int64_t stride = layout[0];
  const char* base = static_cast<const char*>(at(event, 0));
  if (static_cast<const char*>(at(event, n - 1)) != base + (n - 1) * stride) return INT64_MIN;
  const auto field = [layout](const void* p, int c, auto type) {
    decltype(type) value;
    std::memcpy(&value, static_cast<const char*>(p) + layout[1 + c], sizeof value);
    return value;
  };
  copy_columns(n, [base, stride](int i) { return static_cast<const void*>(base + i * stride); }, field,
               reinterpret_cast<BoolFn>(fns[kHasVertex]), cols, offset);
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
