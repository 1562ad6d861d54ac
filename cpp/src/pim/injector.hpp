// Private: the controller extension that expands "update these chunks" into per-bank-group command
// sequences (ACT, unit column/ALU commands, PRE) for one channel.
#pragma once
#include <cstdint>
#include <vector>

#include "reset_native/dram/controller.hpp"
#include "reset_native/pim/layout.hpp"

namespace reset_native::pim {

// One entry of a chunk's command sequence, in issue order within its unit.
struct SeqEntry {
  dram::Command cmd;
  int stream, step, part;  // stream -1: register-only (part = pass number)
  int op;                  // index into Program::ops
};

// The command sequence of a chunk of `steps` steps: batches of as many steps as the registers hold,
// each batch's loads / MACs / ALU passes first, then its stores (one write-to-read turnaround per batch),
// op by op over the batch's steps (one stream, hence one row, at a time).
std::vector<SeqEntry> chunk_sequence(const Program& program, const DataLayout& layout, const UpdateConfig& config,
                                     int steps);

class UpdateInjector : public dram::CommandInjector {
 public:
  UpdateInjector(const UpdateConfig& config, const Program& program, const DataLayout& layout, int channel,
                 int64_t n_params);
  void attach(const dram::Controller* controller) { controller_ = controller; }
  bool propose(const dram::Device& device, int64_t now, dram::Command& cmd, dram::Address& addr) override;
  void issued(dram::Command cmd, const dram::Address& addr, int64_t cycle) override;
  bool done() const override { return remaining_ == 0; }
  int64_t last_store() const { return last_store_; }

 private:
  struct Chunk { int unit_chunk; int steps; };
  struct Unit {
    int rank, bankgroup;
    std::vector<Chunk> chunks;
    size_t chunk = 0;  // current chunk
    size_t pos = 0;    // next entry of the current chunk's sequence
  };
  struct Seq {  // a sequence with, per position and bank, the next entry that touches that bank
    std::vector<SeqEntry> entries;
    std::vector<int> next_on_bank;  // [(pos) * banks + bank] -> entry index or -1
  };
  const Seq& seq_for(int steps);
  dram::Address entry_address(const Unit& u, size_t chunk, const SeqEntry& e) const;
  int bank_of(const Unit& u, size_t chunk, const SeqEntry& e) const;

  const UpdateConfig& cfg_;
  const Program& prog_;
  const DataLayout& layout_;
  const dram::Controller* controller_ = nullptr;
  int banks_;
  std::vector<Unit> units_;
  std::vector<std::pair<int, Seq>> seqs_;  // by steps (full chunk, and the last partial one)
  uint64_t remaining_ = 0;
  int64_t last_store_ = -1;
  int chosen_ = -1;
  size_t rotate_ = 0;
};

}  // namespace reset_native::pim
