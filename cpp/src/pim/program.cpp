#include "reset_native/pim/program.hpp"

#include <cmath>

namespace reset_native::pim {

const char* stream_name(int s) {
  static const char* names[] = {"weight", "grad", "state1", "state2", "copy"};
  return s >= 0 && s < kNumStreams ? names[s] : "?";
}

DType stream_dtype(const UpdateConfig& c, int s) {
  switch (s) {
    case kWeight: return c.weight;
    case kGrad: return c.grad;
    case kCopy: return c.copy;
    default: return c.state;
  }
}

Program build_program(const UpdateConfig& c) {
  const Hyper& h = c.hyper;
  Program p;
  std::vector<Op>& o = p.ops;
  enum { G = 0, W, V, T, U };  // value vectors (register groups)
  auto load = [&](int dst, int s) { o.push_back({OpKind::Load, s, dst, -1, -1, 1.0f, 1.0f}); };
  auto mac = [&](int dst, int s, float a, float b, int x) { o.push_back({OpKind::Mac, s, dst, x, -1, a, b}); };
  auto axpby = [&](int dst, float a, int x, float b, int y) { o.push_back({OpKind::Axpby, -1, dst, x, y, a, b}); };
  auto store = [&](int s, int x) { o.push_back({OpKind::Store, s, -1, x, -1, 1.0f, 1.0f}); };
  std::vector<int> states;
  load(G, kGrad);
  switch (c.optimizer) {
    case Optimizer::SGD:  // w = w - lr g
      mac(W, kWeight, 1.0f, -h.lr, G);
      p.values = 2;
      break;
    case Optimizer::SGD_WD:  // w = (1 - lr wd) w - lr g
      mac(W, kWeight, 1.0f - h.lr * h.weight_decay, -h.lr, G);
      p.values = 2;
      break;
    case Optimizer::Momentum:  // v = mu v + g; w = w - lr v
      mac(V, kState1, h.momentum, 1.0f, G);
      mac(W, kWeight, 1.0f, -h.lr, V);
      p.values = 3;
      states = {kState1};
      break;
    case Optimizer::Nesterov:  // v = mu v + g; w = w - lr (g + mu v)
      mac(V, kState1, h.momentum, 1.0f, G);
      axpby(T, 1.0f, G, h.momentum, V);
      mac(W, kWeight, 1.0f, -h.lr, T);
      p.values = 4;
      states = {kState1};
      break;
    case Optimizer::Momentum_WD:  // d = g + wd w; v = mu v + d; w = w - lr v
      load(W, kWeight);
      axpby(T, 1.0f, G, h.weight_decay, W);
      mac(V, kState1, h.momentum, 1.0f, T);
      axpby(W, 1.0f, W, -h.lr, V);
      p.values = 4;
      states = {kState1};
      break;
    case Optimizer::Adam: {  // m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w = w - lr mhat / (sqrt(vhat) + eps)
      const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(double(h.beta1), h.step)));
      const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(double(h.beta2), h.step)));
      mac(V, kState1, h.beta1, 1.0f - h.beta1, G);
      o.push_back({OpKind::Mul, -1, T, G, G, 1.0f, 1.0f});
      mac(U, kState2, h.beta2, 1.0f - h.beta2, T);
      o.push_back({OpKind::AdamDiv, -1, T, V, U, c1, c2});
      mac(W, kWeight, 1.0f, -h.lr, T);
      p.values = 5;
      states = {kState1, kState2};
      break;
    }
  }
  if (c.optimizer == Optimizer::Adam) {
    store(kState1, V);
    store(kState2, U);
  } else if (!states.empty()) {
    store(kState1, V);
  }
  store(kWeight, W);
  if (c.weight_copy) store(kCopy, W);
  p.streams = {kWeight, kGrad};
  for (int s : states) p.streams.push_back(s);
  if (c.weight_copy) p.streams.push_back(kCopy);
  p.read_streams = {kWeight, kGrad};
  for (int s : states) p.read_streams.push_back(s);
  p.write_streams = {kWeight};
  for (int s : states) p.write_streams.push_back(s);
  if (c.weight_copy) p.write_streams.push_back(kCopy);
  return p;
}

}  // namespace reset_native::pim
