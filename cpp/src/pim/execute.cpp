// The update executed command by command on a byte-level DRAM image (see functional.hpp).
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "arith.hpp"
#include "injector.hpp"
#include "reset_native/error.hpp"
#include "reset_native/pim/commands.hpp"
#include "reset_native/pim/functional.hpp"
#include "reset_native/pim/layout.hpp"

namespace reset_native::pim {

namespace {
// One column access of one rank: devices * column bytes, device d's share at [d * column_bytes].
class Image {
 public:
  Image(int bytes) : bytes_(bytes) {}
  uint8_t* at(int channel, const dram::Address& a) {
    const uint64_t key = ((((uint64_t(channel) * 64 + a.rank) * 64 + a.bankgroup) * 64 + a.bank) << 40) |
                         (uint64_t(a.row) << 16) | uint64_t(a.column);
    auto it = cells_.find(key);
    if (it == cells_.end()) it = cells_.emplace(key, std::vector<uint8_t>(bytes_, 0)).first;
    return it->second.data();
  }

 private:
  int bytes_;
  std::unordered_map<uint64_t, std::vector<uint8_t>> cells_;
};
}  // namespace

void execute_commands(const UpdateConfig& config, int64_t n, float* weight, const float* grad, float* state1,
                      float* state2, float* copy) {
  config.validate();
  require(n >= 1, "n must be >= 1");
  const Program p = build_program(config);
  const DataLayout layout(config, p);
  layout.check_fits(n);
  float* arrays[kNumStreams] = {weight, const_cast<float*>(grad), state1, state2, copy};
  for (int s : p.streams)
    if (arrays[s] == nullptr) throw InvalidArgument(std::string("the optimizer needs the ") + stream_name(s) + " array");
  const int C = layout.column_bytes(), E = layout.step_elements();
  const int D = config.spec.org.devices_per_rank();
  Image image(C * D);
  auto cell = [&](int64_t e, int s, int& byte) {
    const Location l = layout.locate(e, s);
    dram::Address a;
    a.rank = l.rank;
    a.bankgroup = l.bankgroup;
    a.bank = l.bank;
    a.row = l.row;
    a.column = l.column;
    byte = l.device * C + l.byte;
    return image.at(l.channel, a);
  };
  for (int s : p.streams)  // lay the arrays out in the image
    for (int64_t e = 0; e < n; ++e) {
      int byte;
      uint8_t* col = cell(e, s, byte);
      arith::store(stream_dtype(config, s), arrays[s][e], col + byte);
    }
  const int64_t chunk_elems = layout.chunk_elements(), step_elems = int64_t{E} * D;
  const float eps = config.hyper.eps;
  std::vector<float> regs;  // [step][value][device * E + lane]
  for (int64_t c = 0; c < layout.chunks(n); ++c) {
    const ChunkPlace place = layout.chunk(c);
    const int64_t elems = std::min(chunk_elems, n - c * chunk_elems);
    const int steps = static_cast<int>((elems + step_elems - 1) / step_elems);
    regs.assign(size_t(steps) * p.values * step_elems, 0.0f);
    auto reg = [&](int step, int value) { return &regs[(size_t(step) * p.values + value) * step_elems]; };
    for (const SeqEntry& q : chunk_sequence(p, layout, config, steps)) {
      const Op& op = p.ops[q.op];
      if (q.stream < 0) {  // register-only: the whole value in the first pass (the rest is timing)
        if (q.part != 0) continue;
        float* d = reg(q.step, op.dst);
        const float* x = reg(q.step, op.x);
        const float* y = reg(q.step, op.y);
        for (int k = 0; k < step_elems; ++k) {
          if (op.kind == OpKind::Axpby) d[k] = arith::axpby(op.a, x[k], op.b, y[k]);
          else if (op.kind == OpKind::Mul) d[k] = arith::mul(x[k], y[k]);
          else d[k] = arith::adam_div(op.a, x[k], op.b, y[k], eps);
        }
        continue;
      }
      const DType dt = stream_dtype(config, q.stream);
      const int b = dtype_bytes(dt), per_col = C / b;  // elements of this stream per column access
      uint8_t* col = image.at(place.channel, layout.address(place.rank, place.bankgroup, place.unit_chunk,
                                                            q.stream, q.step, q.part));
      for (int dev = 0; dev < D; ++dev)
        for (int lane = q.part * per_col; lane < (q.part + 1) * per_col; ++lane) {
          uint8_t* where = col + dev * C + (lane * b) % C;
          const int k = dev * E + lane;
          if (op.kind == OpKind::Load) reg(q.step, op.dst)[k] = arith::load(dt, where);
          else if (op.kind == OpKind::Mac)
            reg(q.step, op.dst)[k] = arith::axpby(op.a, arith::load(dt, where), op.b, reg(q.step, op.x)[k]);
          else arith::store(dt, round_to(dt, reg(q.step, op.x)[k]), where);
        }
    }
  }
  for (int s : p.write_streams)  // read the results back
    for (int64_t e = 0; e < n; ++e) {
      int byte;
      const uint8_t* col = cell(e, s, byte);
      arrays[s][e] = arith::load(stream_dtype(config, s), col + byte);
    }
}

}  // namespace reset_native::pim
