// DDR4 timing and organisation: plain data, named presets, validated overrides.
// All timings are in clock cycles (tCK) except tCK_ns itself.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace reset_native::dram {

struct Timing {
  int CL = 0, CWL = 0, tRCD = 0, tRP = 0, tRAS = 0, tRC = 0;
  int tCCD_S = 0, tCCD_L = 0, tRRD_S = 0, tRRD_L = 0, tFAW = 0;
  int tWTR_S = 0, tWTR_L = 0, tRTP = 0, tWR = 0, BL = 0;
  int tREFI = 0, tRFC = 0, tRTRS = 0;
};

// One entry per Timing field, in table order, so names drive printing and overrides.
struct TimingField {
  const char* name;
  int Timing::*member;
  const char* meaning;
};
const std::vector<TimingField>& timing_fields();

struct Organisation {
  int bankgroups = 4;        // per rank
  int banks_per_group = 4;
  int rows = 65536;          // per bank
  int columns = 1024;        // per row, per device
  int device_width = 8;      // bits per device (x4/x8/x16)
  int bus_width = 64;        // bits per rank (channel data bus)
  int devices_per_rank() const { return bus_width / device_width; }
  int banks() const { return bankgroups * banks_per_group; }
  int burst_bytes(int BL) const { return bus_width / 8 * BL; }  // 64 B for BL8 on 64 bits
};

// IDD-style currents (mA, per device) and supply voltage, for later energy estimates.
struct Currents {
  double VDD = 1.2;
  double IDD0 = 0, IDD2N = 0, IDD3N = 0, IDD4R = 0, IDD4W = 0, IDD5B = 0;
};

struct Spec {
  std::string name;
  Timing timing;
  Organisation org;
  Currents idd;
  double tCK_ns = 0;

  static Spec preset(const std::string& name);             // throws InvalidArgument on unknown name
  static std::vector<std::string> preset_names();
  // Returns a copy with the named timings replaced, validated; unknown names / bad values throw.
  Spec with_timings(const std::vector<std::pair<std::string, int>>& overrides) const;
  void validate() const;                                    // throws InvalidArgument naming the rule
  int get(const std::string& timing_name) const;            // throws on unknown name
  double peak_bandwidth_GBps(int channels) const;           // one burst per BL/2 clocks per channel
};

}  // namespace reset_native::dram
