// Where a chunk's operands live. A chunk = steps_per_chunk steps of every device of one rank; it is
// processed by the unit of one (channel, rank, bank group). Chunks rotate over channels, ranks and
// bank groups. Byte lanes: each device holds whole elements (E per column access), so its unit
// computes on its own data; device d of a rank holds elements [d*E, (d+1)*E) of every step.
#pragma once
#include <cstdint>
#include <vector>

#include "reset_native/dram/device.hpp"
#include "reset_native/pim/program.hpp"

namespace reset_native::pim {

struct StreamPlace {
  int bank = 0;         // bank inside the group (Banks layout), or row slot (Rows layout)
  int column = 0;       // first burst column of the chunk's data in its row
  int cols_per_step = 0;
};

// Where one byte-lane element of one stream lives: its column access, the device of the rank that
// holds it, and its first byte inside that device's share of the column access.
struct Location {
  int channel, rank, bankgroup, bank, row, column, device, byte;
};

struct ChunkPlace {
  int channel, rank, bankgroup, unit_chunk;  // unit_chunk: index of the chunk within its unit
};

class DataLayout {
 public:
  DataLayout(const UpdateConfig& config, const Program& program);
  int column_bytes() const { return column_bytes_; }       // per device per column access
  int step_elements() const { return step_elements_; }     // per device
  int steps_per_chunk() const { return steps_per_chunk_; }
  int64_t chunk_elements() const { return int64_t{steps_per_chunk_} * step_elements_ * devices_; }
  int units() const { return channels_ * ranks_ * bankgroups_; }
  int64_t chunks(int64_t n_params) const { return (n_params + chunk_elements() - 1) / chunk_elements(); }
  ChunkPlace chunk(int64_t c) const;
  const StreamPlace& stream(int s) const { return place_[s]; }
  // DRAM address of (stream, step within chunk, part) of the unit_chunk-th chunk of a unit.
  dram::Address address(int rank, int bankgroup, int unit_chunk, int stream, int step, int part) const;
  Location locate(int64_t element, int stream) const;
  int regs_per_value() const { return regs_per_value_; }
  int rows_needed(int64_t n_params) const;     // per bank
  void check_fits(int64_t n_params) const;     // InvalidArgument when the layout exceeds the rows

 private:
  const UpdateConfig* cfg_;
  Layout kind_;
  int channels_, ranks_, bankgroups_, banks_, devices_, row_bursts_;
  int column_bytes_, step_elements_, steps_per_chunk_, regs_per_value_, slots_;
  StreamPlace place_[kNumStreams];
};

}  // namespace reset_native::pim
