#include "reset_native/pim/layout.hpp"

#include <algorithm>

#include "reset_native/error.hpp"

namespace reset_native::pim {

DataLayout::DataLayout(const UpdateConfig& config, const Program& program) : cfg_(&config) {
  const dram::Spec& s = config.spec;
  kind_ = config.layout;
  channels_ = config.channels;
  ranks_ = config.ranks;
  bankgroups_ = s.org.bankgroups;
  banks_ = s.org.banks_per_group;
  devices_ = s.org.devices_per_rank();
  row_bursts_ = s.org.columns / s.timing.BL;
  column_bytes_ = s.org.device_width * s.timing.BL / 8;
  int narrow = 4;
  for (int st : program.streams) narrow = std::min(narrow, dtype_bytes(stream_dtype(config, st)));
  require(column_bytes_ % narrow == 0 && column_bytes_ >= 4,
          "a column access of one device must hold whole elements (device_width * BL / 8 >= 4 bytes)");
  step_elements_ = column_bytes_ / narrow;
  regs_per_value_ = 4 / narrow;  // values are fp32 in the unit: E * 4 bytes = (4 / narrow) registers
  const int regs = program.values * regs_per_value_;
  require(config.registers_per_unit >= regs,
          std::string("registers_per_unit=") + std::to_string(config.registers_per_unit) + " is too small: " +
              optimizer_name(config.optimizer) + " needs " + std::to_string(regs) +
              " registers per step (" + std::to_string(program.values) + " fp32 values of " +
              std::to_string(regs_per_value_) + " registers)");
  std::vector<int> order = program.streams;
  for (int st : order) place_[st].cols_per_step = dtype_bytes(stream_dtype(config, st)) / narrow;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return place_[a].cols_per_step > place_[b].cols_per_step; });
  int widest = 0;
  if (kind_ == Layout::Banks) {
    std::vector<int> load(banks_, 0);  // columns per step already placed in each bank
    for (int st : order) {
      const int b = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
      place_[st].bank = b;
      place_[st].column = load[b];  // in steps' columns; scaled below
      load[b] += place_[st].cols_per_step;
    }
    widest = *std::max_element(load.begin(), load.end());
    slots_ = 1;
  } else {
    int slot = 0;
    for (int st : program.streams) {
      place_[st].bank = slot++;
      place_[st].column = 0;
      widest = std::max(widest, place_[st].cols_per_step);
    }
    slots_ = slot;
  }
  steps_per_chunk_ = row_bursts_ / widest;
  require(steps_per_chunk_ >= 1, "a row is too short for one step of every operand");
  for (int st : program.streams) place_[st].column *= steps_per_chunk_;
}

ChunkPlace DataLayout::chunk(int64_t c) const {
  ChunkPlace p;
  p.channel = static_cast<int>(c % channels_);
  p.rank = static_cast<int>((c / channels_) % ranks_);
  p.bankgroup = static_cast<int>((c / (channels_ * ranks_)) % bankgroups_);
  p.unit_chunk = static_cast<int>(c / units());
  return p;
}

dram::Address DataLayout::address(int rank, int bankgroup, int unit_chunk, int stream, int step, int part) const {
  const StreamPlace& sp = place_[stream];
  dram::Address a;
  a.rank = rank;
  a.bankgroup = bankgroup;
  a.column = sp.column + step * sp.cols_per_step + part;
  if (kind_ == Layout::Banks) {
    a.bank = sp.bank;
    a.row = unit_chunk;
  } else {
    a.bank = unit_chunk % banks_;
    a.row = (unit_chunk / banks_) * slots_ + sp.bank;
  }
  return a;
}

Location DataLayout::locate(int64_t element, int stream) const {
  const ChunkPlace p = chunk(element / chunk_elements());
  const int64_t k = element % chunk_elements();
  const int per_step = step_elements_ * devices_;
  const int step = static_cast<int>(k / per_step);
  const int r = static_cast<int>(k % per_step);
  const int lane = r % step_elements_;
  const int offset = lane * dtype_bytes(stream_dtype(*cfg_, stream));  // bytes into the device's step data
  const dram::Address a = address(p.rank, p.bankgroup, p.unit_chunk, stream, step, offset / column_bytes_);
  return Location{p.channel, a.rank, a.bankgroup, a.bank, a.row, a.column, r / step_elements_,
                  offset % column_bytes_};
}

int DataLayout::rows_needed(int64_t n_params) const {
  const int64_t per_unit = (chunks(n_params) + units() - 1) / units();
  const int64_t rows = kind_ == Layout::Banks ? per_unit : ((per_unit + banks_ - 1) / banks_) * slots_;
  return static_cast<int>(std::min<int64_t>(rows, int64_t{1} << 30));
}

void DataLayout::check_fits(int64_t n_params) const {
  require(n_params >= 1, "n_params must be >= 1, got " + std::to_string(n_params));
  const int rows = rows_needed(n_params);
  if (rows > cfg_->spec.org.rows)
    throw InvalidArgument("layout does not fit the memory: " + std::to_string(n_params) + " parameters need " +
                          std::to_string(rows) + " rows per bank with " + std::to_string(units()) +
                          " bank groups, the device has " + std::to_string(cfg_->spec.org.rows) +
                          " (add channels or ranks)");
}

}  // namespace reset_native::pim
