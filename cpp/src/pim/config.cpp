#include "reset_native/pim/config.hpp"

#include "reset_native/error.hpp"

namespace reset_native::pim {

namespace {
struct Named { const char* name; Optimizer value; };
constexpr Named kOptimizers[] = {
    {"sgd", Optimizer::SGD},       {"momentum", Optimizer::Momentum},       {"nesterov", Optimizer::Nesterov},
    {"sgd_wd", Optimizer::SGD_WD}, {"momentum_wd", Optimizer::Momentum_WD}, {"adam", Optimizer::Adam},
};
}  // namespace

Optimizer parse_optimizer(const std::string& name) {
  for (const auto& o : kOptimizers)
    if (name == o.name) return o.value;
  throw InvalidArgument("unknown optimizer '" + name +
                        "'; known: sgd, momentum, nesterov, sgd_wd, momentum_wd, adam");
}

const char* optimizer_name(Optimizer o) {
  for (const auto& n : kOptimizers)
    if (n.value == o) return n.name;
  return "?";
}

DType parse_dtype(const std::string& name) {
  if (name == "fp32") return DType::FP32;
  if (name == "fp16") return DType::FP16;
  if (name == "bf16") return DType::BF16;
  throw InvalidArgument("unknown dtype '" + name + "'; known: fp32, fp16, bf16");
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::FP32: return "fp32";
    case DType::FP16: return "fp16";
    case DType::BF16: return "bf16";
  }
  return "?";
}

int dtype_bytes(DType d) { return d == DType::FP32 ? 4 : 2; }

Layout parse_layout(const std::string& name) {
  if (name == "banks") return Layout::Banks;
  if (name == "rows") return Layout::Rows;
  throw InvalidArgument("unknown layout '" + name + "'; known: banks, rows");
}

void UpdateConfig::validate() const {
  spec.validate();
  require(channels >= 1 && channels <= 64 && (channels & (channels - 1)) == 0,
          "channels must be a power of two in [1, 64], got " + std::to_string(channels));
  require(ranks >= 1 && ranks <= 16 && (ranks & (ranks - 1)) == 0,
          "ranks must be a power of two in [1, 16], got " + std::to_string(ranks));
  require(registers_per_unit >= 1 && registers_per_unit <= 4096,
          "registers_per_unit must be in [1, 4096], got " + std::to_string(registers_per_unit));
  require(spec.org.banks_per_group >= 1, "spec needs banks in every bank group");
  require(timing.cross_group >= 1, "timing.cross_group must be >= 1 (one command per clock)");
  require(timing.sfu_passes >= 1, "timing.sfu_passes must be >= 1");
  require(host_tile >= 1, "host_tile must be >= 1, got " + std::to_string(host_tile));
  require(hyper.step >= 1, "step must be >= 1, got " + std::to_string(hyper.step));
  require(energy.io_pJ_per_bit >= 0 && energy.alu_pJ_per_byte >= 0, "energies must be >= 0");
}

PimTiming UpdateConfig::resolved_timing() const {
  const dram::Timing& t = spec.timing;
  PimTiming r = timing;
  if (r.write_to_read < 0) r.write_to_read = t.BL / 2 + t.tWTR_L;
  if (r.write_recovery < 0) r.write_recovery = t.BL / 2 + t.tWR;
  if (r.host_cross_group < 0) r.host_cross_group = t.tCCD_S;
  return r;
}

}  // namespace reset_native::pim
