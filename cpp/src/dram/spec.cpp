#include "reset_native/dram/spec.hpp"

#include <sstream>

#include "reset_native/error.hpp"

namespace reset_native::dram {

const std::vector<TimingField>& timing_fields() {
  static const std::vector<TimingField> fields = {
      {"CL", &Timing::CL, "RD to first data (CAS latency)"},
      {"CWL", &Timing::CWL, "WR to first data (CAS write latency)"},
      {"tRCD", &Timing::tRCD, "ACT to RD/WR, same bank"},
      {"tRP", &Timing::tRP, "PRE to ACT, same bank"},
      {"tRAS", &Timing::tRAS, "ACT to PRE, same bank"},
      {"tRC", &Timing::tRC, "ACT to ACT, same bank"},
      {"tCCD_S", &Timing::tCCD_S, "column to column, different bank group"},
      {"tCCD_L", &Timing::tCCD_L, "column to column, same bank group"},
      {"tRRD_S", &Timing::tRRD_S, "ACT to ACT, different bank group"},
      {"tRRD_L", &Timing::tRRD_L, "ACT to ACT, same bank group"},
      {"tFAW", &Timing::tFAW, "window holding at most 4 ACTs per rank"},
      {"tWTR_S", &Timing::tWTR_S, "end of write data to RD, different bank group"},
      {"tWTR_L", &Timing::tWTR_L, "end of write data to RD, same bank group"},
      {"tRTP", &Timing::tRTP, "RD to PRE"},
      {"tWR", &Timing::tWR, "end of write data to PRE (write recovery)"},
      {"BL", &Timing::BL, "burst length (beats); a burst holds the bus BL/2 clocks"},
      {"tREFI", &Timing::tREFI, "REF interval per rank"},
      {"tRFC", &Timing::tRFC, "REF to next ACT/REF (rank busy)"},
      {"tRTRS", &Timing::tRTRS, "extra data-bus turnaround between ranks"},
  };
  return fields;
}

namespace {

// Spec's fields in order: name, timing, organisation, currents, tCK_ns.
Spec ddr4_2400r_x8() {
  // Representative 8Gb DDR4-2400 x8 datasheet currents (mA per device); override for your part.
  return Spec{"DDR4_2400R_8Gb_x8", Timing{16, 12, 16, 16, 39, 55, 4, 6, 4, 6, 26, 3, 9, 9, 18, 8, 9360, 420, 1},
              Organisation{4, 4, 65536, 1024, 8, 64}, Currents{1.2, 48, 34, 43, 135, 118, 250}, 0.833};
}

Spec ddr4_3200_x8() {
  return Spec{"DDR4_3200_8Gb_x8", Timing{22, 16, 22, 22, 52, 74, 4, 8, 4, 8, 34, 4, 12, 12, 24, 8, 12480, 560, 1},
              Organisation{4, 4, 65536, 1024, 8, 64}, Currents{1.2, 58, 39, 50, 165, 150, 275}, 0.625};
}

Spec ddr4_2400r_x16() {
  Spec s = ddr4_2400r_x8();
  s.name = "DDR4_2400R_8Gb_x16";
  s.org = Organisation{2, 4, 65536, 1024, 16, 64};  // 2 KB page: 2 bank groups
  s.timing.tRRD_S = 7;   // max(4 nCK, 5.3 ns)
  s.timing.tRRD_L = 8;   // max(4 nCK, 6.4 ns)
  s.timing.tFAW = 36;    // 30 ns
  s.idd = Currents{1.2, 70, 34, 46, 210, 190, 250};
  return s;
}

Spec ddr4_2400r_x4() {
  Spec s = ddr4_2400r_x8();
  s.name = "DDR4_2400R_8Gb_x4";
  s.org = Organisation{4, 4, 131072, 1024, 4, 64};  // 512 B page, 16 devices per rank
  s.timing.tFAW = 16;    // 13 ns
  s.idd = Currents{1.2, 43, 34, 41, 110, 100, 250};
  return s;
}

bool power_of_two(int v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

std::vector<std::string> Spec::preset_names() {
  return {"DDR4_2400R_8Gb_x8", "DDR4_3200_8Gb_x8", "DDR4_2400R_8Gb_x16", "DDR4_2400R_8Gb_x4"};
}

Spec Spec::preset(const std::string& name) {
  if (name == "DDR4_2400R_8Gb_x8") return ddr4_2400r_x8();
  if (name == "DDR4_3200_8Gb_x8") return ddr4_3200_x8();
  if (name == "DDR4_2400R_8Gb_x16") return ddr4_2400r_x16();
  if (name == "DDR4_2400R_8Gb_x4") return ddr4_2400r_x4();
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  throw InvalidArgument("unknown DDR4 preset '" + name + "'; known presets: " + known);
}

int Spec::get(const std::string& timing_name) const {
  for (const auto& f : timing_fields())
    if (timing_name == f.name) return timing.*(f.member);
  throw InvalidArgument("unknown timing '" + timing_name + "'");
}

Spec Spec::with_timings(const std::vector<std::pair<std::string, int>>& overrides) const {
  Spec out = *this;
  for (const auto& [key, value] : overrides) {
    bool found = false;
    for (const auto& f : timing_fields())
      if (key == f.name) { out.timing.*(f.member) = value; found = true; }
    if (!found) {
      std::string known;
      for (const auto& f : timing_fields()) known += (known.empty() ? "" : ", ") + std::string(f.name);
      throw InvalidArgument("unknown timing '" + key + "'; known timings: " + known);
    }
  }
  out.validate();
  return out;
}

void Spec::validate() const {
  const Timing& t = timing;
  for (const auto& f : timing_fields()) {
    const int v = t.*(f.member);
    if (std::string(f.name) == "tRTRS") {
      require(v >= 0, "timing tRTRS must be >= 0 clocks, got " + std::to_string(v));
    } else {
      require(v >= 1, std::string("timing ") + f.name + " must be >= 1 clock, got " + std::to_string(v));
    }
  }
  auto rel = [](bool ok, const std::string& what, int a, int b) {
    require(ok, "inconsistent timings: " + what + " (got " + std::to_string(a) + " vs " +
                    std::to_string(b) + ")");
  };
  rel(t.tRC >= t.tRAS + t.tRP, "tRC must be >= tRAS + tRP", t.tRC, t.tRAS + t.tRP);
  rel(t.tRAS >= t.tRCD, "tRAS must be >= tRCD", t.tRAS, t.tRCD);
  rel(t.tCCD_L >= t.tCCD_S, "tCCD_L must be >= tCCD_S", t.tCCD_L, t.tCCD_S);
  rel(t.tRRD_L >= t.tRRD_S, "tRRD_L must be >= tRRD_S", t.tRRD_L, t.tRRD_S);
  rel(t.tWTR_L >= t.tWTR_S, "tWTR_L must be >= tWTR_S", t.tWTR_L, t.tWTR_S);
  require(t.BL == 8, "BL must be 8 (64-byte bursts on a 64-bit channel), got " + std::to_string(t.BL));
  rel(t.tCCD_S >= t.BL / 2, "tCCD_S must be >= BL/2 (a burst holds the data bus BL/2 clocks)", t.tCCD_S,
      t.BL / 2);
  rel(t.tREFI > t.tRFC, "tREFI must be > tRFC", t.tREFI, t.tRFC);
  require(tCK_ns > 0, "tCK_ns must be > 0, got " + std::to_string(tCK_ns));
  const Organisation& o = org;
  require(power_of_two(o.bankgroups) && power_of_two(o.banks_per_group) && power_of_two(o.rows) &&
              power_of_two(o.columns),
          "organisation: bank groups, banks, rows and columns must be powers of two");
  require(o.device_width == 4 || o.device_width == 8 || o.device_width == 16,
          "organisation: device width must be 4, 8 or 16 bits, got " + std::to_string(o.device_width));
  require(o.bus_width == 64, "organisation: bus width must be 64 bits");
  require(o.columns >= t.BL, "organisation: a row needs at least BL columns");
}

double Spec::peak_bandwidth_GBps(int channels) const {
  return channels * org.burst_bytes(timing.BL) / (timing.BL / 2 * tCK_ns);  // bytes per ns = GB/s
}

}  // namespace reset_native::dram
