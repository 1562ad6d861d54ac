#include "injector.hpp"

#include <algorithm>

#include "reset_native/error.hpp"
#include "reset_native/pim/commands.hpp"

namespace reset_native::pim {

using dram::Command;

std::vector<SeqEntry> chunk_sequence(const Program& program, const DataLayout& layout, const UpdateConfig& config,
                                     int steps) {
  const int per_step = program.values * layout.regs_per_value();
  const int batch = std::max(1, config.registers_per_unit / per_step);
  const int rpv = layout.regs_per_value();
  std::vector<SeqEntry> out;
  for (int first = 0; first < steps; first += batch) {
    const int last = std::min(steps, first + batch);
    for (int pass = 0; pass < 2; ++pass) {  // 0: loads, MACs and ALU passes; 1: stores
      for (int oi = 0; oi < static_cast<int>(program.ops.size()); ++oi) {  // op-major: one stream (row) at a time
        const Op& op = program.ops[oi];
        if (op.is_store() != (pass == 1)) continue;
        for (int step = first; step < last; ++step) {
          if (op.is_column()) {
            const Command c = op.kind == OpKind::Load ? kLoad : op.kind == OpKind::Mac ? kMac : kStore;
            for (int part = 0; part < layout.stream(op.stream).cols_per_step; ++part)
              out.push_back({c, op.stream, step, part, oi});
          } else {
            const int passes = rpv * (op.kind == OpKind::AdamDiv ? config.timing.sfu_passes : 1);
            for (int k = 0; k < passes; ++k) out.push_back({kAlu, -1, step, k, oi});
          }
        }
      }
    }
  }
  return out;
}

UpdateInjector::UpdateInjector(const UpdateConfig& config, const Program& program, const DataLayout& layout,
                               int channel, int64_t n_params)
    : cfg_(config), prog_(program), layout_(layout), banks_(config.spec.org.banks_per_group) {
  seqs_.reserve(8);  // at most two lengths (full chunk, last chunk): references stay valid
  const int bgs = config.spec.org.bankgroups;
  for (int r = 0; r < config.ranks; ++r)
    for (int g = 0; g < bgs; ++g) units_.push_back(Unit{r, g, {}, 0, 0});
  const int64_t chunk_elems = layout.chunk_elements();
  const int64_t step_elems = chunk_elems / layout.steps_per_chunk();
  const int64_t chunks = layout.chunks(n_params);
  for (int64_t c = 0; c < chunks; ++c) {
    const ChunkPlace p = layout.chunk(c);
    if (p.channel != channel) continue;
    const int64_t elems = std::min(chunk_elems, n_params - c * chunk_elems);
    const int steps = static_cast<int>((elems + step_elems - 1) / step_elems);
    units_[p.rank * bgs + p.bankgroup].chunks.push_back({p.unit_chunk, steps});
    remaining_ += seq_for(steps).entries.size();
  }
}

const UpdateInjector::Seq& UpdateInjector::seq_for(int steps) {
  for (const auto& [s, seq] : seqs_)
    if (s == steps) return seq;
  Seq seq;
  seq.entries = chunk_sequence(prog_, layout_, cfg_, steps);
  const size_t n = seq.entries.size();
  seq.next_on_bank.assign((n + 1) * banks_, -1);
  // Bank of an entry relative to the chunk: in the Banks layout the stream's bank; in the Rows layout
  // every entry uses the chunk's bank (resolved per chunk), so bank slot 0 stands for it here.
  for (size_t i = n; i-- > 0;) {
    std::copy_n(&seq.next_on_bank[(i + 1) * banks_], banks_, &seq.next_on_bank[i * banks_]);
    const SeqEntry& e = seq.entries[i];
    if (e.stream >= 0) {
      const int b = cfg_.layout == Layout::Banks ? layout_.stream(e.stream).bank : 0;
      seq.next_on_bank[i * banks_ + b] = static_cast<int>(i);
    }
  }
  seqs_.emplace_back(steps, std::move(seq));
  return seqs_.back().second;
}

dram::Address UpdateInjector::entry_address(const Unit& u, size_t chunk, const SeqEntry& e) const {
  if (e.stream < 0) {
    dram::Address a;
    a.rank = u.rank;
    a.bankgroup = u.bankgroup;
    return a;
  }
  return layout_.address(u.rank, u.bankgroup, u.chunks[chunk].unit_chunk, e.stream, e.step, e.part);
}

bool UpdateInjector::propose(const dram::Device& device, int64_t, Command& cmd, dram::Address& addr) {
  int64_t best_t = dram::kNever;
  int best_rank = 3;  // 0 unit command, 1 ACT, 2 PRE
  chosen_ = -1;
  const size_t n = units_.size();
  auto consider = [&](int unit, Command c, const dram::Address& a, int rank) {
    const int64_t t = device.earliest(c, a);
    if (t < best_t || (t == best_t && rank < best_rank)) {
      best_t = t;
      best_rank = rank;
      cmd = c;
      addr = a;
      chosen_ = unit;
    }
  };
  // Moves bank `a` toward row a.row: PRE when another row is open, ACT when it is closed.
  auto prepare = [&](int unit, const dram::Address& a) {
    const int open = device.open_row(a);
    if (open == a.row) return;
    if (open < 0) consider(unit, Command::ACT, a, 1);
    else consider(unit, Command::PRE, a, 2);
  };
  for (size_t k = 0; k < n; ++k) {
    const int ui = static_cast<int>((rotate_ + k) % n);
    Unit& u = units_[ui];
    if (u.chunk >= u.chunks.size()) continue;
    if (controller_ && controller_->refresh_pending(u.rank)) continue;  // let the refresh close the rank
    const Seq& seq = seq_for(u.chunks[u.chunk].steps);
    const SeqEntry& e = seq.entries[u.pos];
    const dram::Address a = entry_address(u, u.chunk, e);
    if (e.stream < 0 || device.open_row(a) == a.row) consider(ui, e.cmd, a, 0);
    else prepare(ui, a);
    // Look ahead: open the rows later entries (of this chunk, then the next) want in the other banks.
    for (int b = 0; b < banks_; ++b) {
      int j = seq.next_on_bank[u.pos * banks_ + b];
      size_t chunk = u.chunk;
      const Seq* s = &seq;
      if (j < 0 && u.chunk + 1 < u.chunks.size()) {
        chunk = u.chunk + 1;
        s = &seq_for(u.chunks[chunk].steps);
        j = s->next_on_bank[b];
      }
      if (j < 0) continue;
      const dram::Address la = entry_address(u, chunk, s->entries[j]);
      if (la.bank == a.bank && e.stream >= 0) continue;  // the current entry's bank is handled above
      prepare(ui, la);
    }
  }
  if (chosen_ < 0) return false;
  rotate_ = (static_cast<size_t>(chosen_) + 1) % n;
  return true;
}

void UpdateInjector::issued(Command cmd, const dram::Address&, int64_t cycle) {
  if (cmd == Command::ACT || cmd == Command::PRE) return;
  Unit& u = units_[chosen_];
  if (cmd == kStore) last_store_ = std::max(last_store_, cycle);
  --remaining_;
  if (++u.pos == seq_for(u.chunks[u.chunk].steps).entries.size()) {
    u.pos = 0;
    ++u.chunk;
  }
}

}  // namespace reset_native::pim
