// The FR-FCFS chooser's scan over every bank, vectorised with AVX2: one vector holds the four banks
// of one bank group, whose group and rank ready-time terms are shared. The controller keeps a flat
// copy of its candidates for it. Its result equals the portable scan in Controller::choose_frfcfs,
// which stays the reference and the fallback (CPUs without AVX2, bank groups of other sizes).
#pragma once
#include <cstdint>

#include "reset_native/dram/command.hpp"

namespace reset_native::dram {

// The candidates of one mode, one entry per flat bank (flat bank = flat group * 4 + bank). A
// candidate's command must be one of the first eight slots (the DDR4 commands).
struct CandidateTable {
  const int64_t* bank_ready;          // the bank's own ready-time term; kNever: unscheduled
  const int64_t* lanes;               // scan_lanes(command)
  const int64_t* upper;               // scan_upper(command)
  const int64_t* key;                 // priority, smaller first; >= 0
  const int64_t* const* group_ready;  // per flat bank group: its ready times, by command
  const int64_t* const* rank_ready;   // per rank: its ready times, by command
  int ranks, groups_per_rank;
  int64_t* when;                      // scratch, one entry per bank
};

// How the scan picks a command's term out of the eight per-command ready times held in two vectors
// of four: the 32-bit lane pair of its slot within a vector, and all ones when it is in the second.
inline int64_t scan_lanes(Command c) {
  const int64_t lane = 2 * (index(c) & 3);
  return lane | (lane + 1) << 32;
}
inline int64_t scan_upper(Command c) { return index(c) >= 4 ? -1 : 0; }

// Whether this CPU (and build) can run frfcfs_scan_avx2.
bool frfcfs_scan_avx2_available();

// Sets `at` to max(now, the earliest ready time of any candidate) (>= kNever when none is scheduled)
// and returns the smallest key among the candidates ready by then. A candidate's ready time is the
// maximum of its bank term and its group's and rank's terms for its command.
int64_t frfcfs_scan_avx2(const CandidateTable& table, int64_t now, int64_t& at);

}  // namespace reset_native::dram
