// The per-step program of one optimizer on a GradPIM unit. A step is the group of elements whose
// narrowest operand fills one column access of one device (E = column bytes / narrowest dtype bytes).
// Values are E-element fp32 vectors held in registers; each op becomes one or more DRAM commands.
#pragma once
#include <vector>

#include "reset_native/pim/config.hpp"

namespace reset_native::pim {

// Operand streams: the arrays a chunk keeps in DRAM.
enum Stream { kWeight = 0, kGrad, kState1, kState2, kCopy, kNumStreams };
const char* stream_name(int s);

enum class OpKind {
  Load,      // v[dst] = col(stream)                       (internal column read)
  Mac,       // v[dst] = a * col(stream) + b * v[x]        (column read fused with a scaled add)
  Store,     // col(stream) = round(v[x])                  (internal column write)
  Axpby,     // v[dst] = a * v[x] + b * v[y]               (register-only)
  Mul,       // v[dst] = v[x] * v[y]                       (register-only)
  AdamDiv,   // v[dst] = (a * v[x]) / (sqrt(b * v[y]) + eps)  (register-only, special function unit)
};

struct Op {
  OpKind kind;
  int stream = -1;  // column ops
  int dst = -1, x = -1, y = -1;
  float a = 1.0f, b = 1.0f;
  bool is_column() const { return kind == OpKind::Load || kind == OpKind::Mac || kind == OpKind::Store; }
  bool is_store() const { return kind == OpKind::Store; }
};

struct Program {
  std::vector<Op> ops;           // one step, loads/ALU before the stores of that step
  int values = 0;                // distinct value vectors (register groups) one step needs
  std::vector<int> streams;      // streams the optimizer keeps (subset of Stream)
  std::vector<int> read_streams, write_streams;  // what the host baseline reads / writes
};

Program build_program(const UpdateConfig& config);
DType stream_dtype(const UpdateConfig& config, int stream);

}  // namespace reset_native::pim
