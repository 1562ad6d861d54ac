// GradPIM configuration: which optimizer runs on the per-bank-group units, the precision of each
// stored operand, the unit's size, its timing and energy assumptions, and the data layout.
// Every DECISION of SPEC-gradpim section 3 that has a knob lives here (docs/gradpim.md explains them).
#pragma once
#include <string>

#include "reset_native/dram/spec.hpp"

namespace reset_native::pim {

enum class Optimizer { SGD, Momentum, Nesterov, SGD_WD, Momentum_WD, Adam };
enum class DType { FP32, FP16, BF16 };
// Banks: each operand stream of a chunk lives in its own bank of the bank group (all rows open at
// once). Rows: all streams of a chunk share one bank, one row each (the unit switches rows).
enum class Layout { Banks, Rows };

Optimizer parse_optimizer(const std::string& name);  // "sgd", "momentum", ... (InvalidArgument otherwise)
const char* optimizer_name(Optimizer o);
DType parse_dtype(const std::string& name);  // "fp32", "fp16", "bf16"
const char* dtype_name(DType d);
int dtype_bytes(DType d);
Layout parse_layout(const std::string& name);  // "banks", "rows"

struct Hyper {
  float lr = 0.01f, momentum = 0.9f, weight_decay = 1e-4f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  int step = 1;  // Adam's step number t (bias correction)
};

// Timing of the unit beyond the DDR4 table. -1 = the default derived from the spec (in brackets).
struct PimTiming {
  int write_to_read = -1;     // unit store -> unit load/MAC in the bank group [BL/2 + tWTR_L]
  int write_recovery = -1;    // unit store -> PRE of its bank [BL/2 + tWR]
  int cross_group = 1;        // unit column command -> unit command in another bank group [1: bus only]
  int host_cross_group = -1;  // unit command <-> host RD/WR in another bank group of the rank [tCCD_S]
  int sfu_passes = 2;         // datapath passes of Adam's m / (sqrt(v) + eps) per register
};

struct Energy {              // per-event energies not covered by IDD currents
  double io_pJ_per_bit = 5.0;    // DQ driver + termination, external bursts only
  double alu_pJ_per_byte = 0.5;  // unit datapath, per byte of one column access processed
};

struct UpdateConfig {
  dram::Spec spec;
  int channels = 1, ranks = 1;
  int registers_per_unit = 16;  // registers of one column access (device_width * BL / 8 bytes) per unit
  Optimizer optimizer = Optimizer::Momentum;
  DType weight = DType::FP32, grad = DType::FP16, state = DType::FP32;
  bool weight_copy = true;      // also store a low-precision copy of the weights for the next forward pass
  DType copy = DType::FP16;
  Layout layout = Layout::Banks;
  Hyper hyper;
  PimTiming timing;
  Energy energy;
  int host_tile = 512;          // host baseline: elements read before their results are written
  bool host_interleaved = true; // host baseline layout: bank-group interleaved (fair) or the PIM layout
  void validate() const;        // InvalidArgument naming the field
  // The timing knobs with defaults resolved against the spec.
  PimTiming resolved_timing() const;
};

}  // namespace reset_native::pim
