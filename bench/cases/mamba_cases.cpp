// Mamba cases: the selective scan at the shapes of specs/mamba_scan.md §2.5 (with z, D, delta bias
// + softplus, variable B/C), in fp32 and bf16 storage, a decode step, and causal conv1d.
//
// Counting (spec §2.5): scan bytes = e·(P·(u, delta, z, out) + Q·(B, C)) + 4·(D·N (A) + 2D + S·[h0]
// + S (last state)) with e the storage size; ops = P·(20·N + 60) (exact exp per state step,
// softplus and silu per (b, d, t)). conv1d: bytes = e·(2P + D·W + D), ops = P·(2W + 20).
// Validation: the fallback runs a deterministic subset of channels — one group (D/G channels, or
// at most 64 when G = 1) on every batch row, as views of the same buffers — and compares bits.
#include <fmt/format.h>

#include <cstring>

#include "cases/case.h"

namespace sparq::bench {

std::vector<Case> mamba_ext_cases();  // mamba_ext_cases.cpp: scan_q, SSD, Hadamard, W8A8

namespace {

using namespace sparq::mamba;

struct ScanShape {
  std::int64_t batch, D, N, L, G;
  DType dtype;
  bool h0;
};

class ScanInstance : public Instance {
 public:
  ScanInstance(Context& ctx, ScanShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    const auto P = static_cast<std::size_t>(s.batch * s.D * s.L);
    const auto Q = static_cast<std::size_t>(s.batch * s.G * s.N * s.L);
    u_ = random_normal(P, seed);
    dl_ = random_normal(P, seed + 1);
    z_ = random_normal(P, seed + 2);
    b_ = random_normal(Q, seed + 3);
    c_ = random_normal(Q, seed + 4);
    a_ = random_normal(static_cast<std::size_t>(s.D * s.N), seed + 5, 0.5f);
    for (auto& x : a_) x = -(x < 0 ? -x : x) - 0.05f;
    dsk_ = random_normal(static_cast<std::size_t>(s.D), seed + 6);
    bias_ = random_normal(static_cast<std::size_t>(s.D), seed + 7, 0.5f);
    h0_ = random_normal(static_cast<std::size_t>(s.batch * s.D * s.N), seed + 8);
    args_ = make(ctx_);
  }

  void run() override { out_ = selective_scan(ctx_, args_); }

  Validation validate(Context& fallback) override {
    const std::int64_t dsub = s_.G > 1 ? s_.D / s_.G : std::min<std::int64_t>(s_.D, 64);
    auto sub = [&](Context& ctx, const SelectiveScanArgs& a) {
      SelectiveScanArgs v = a;
      v.u = a.u.view({s_.batch, dsub, s_.L}, a.u.strides());
      v.delta = a.delta.view({s_.batch, dsub, s_.L}, a.delta.strides());
      v.z = a.z.view({s_.batch, dsub, s_.L}, a.z.strides());
      v.A = a.A.view({dsub, s_.N}, {});
      v.Dskip = a.Dskip.view({dsub}, {});
      v.delta_bias = a.delta_bias.view({dsub}, {});
      v.Bm = a.Bm.view({s_.batch, 1, s_.N, s_.L}, a.Bm.strides());
      v.Cm = a.Cm.view({s_.batch, 1, s_.N, s_.L}, a.Cm.strides());
      if (a.h0.defined()) v.h0 = ctx.upload(h0sub(dsub), DType::f32, {s_.batch, dsub, s_.N});
      return v;
    };
    const auto d = selective_scan(ctx_, sub(ctx_, args_));
    const auto f = selective_scan(fallback, sub(fallback, make(fallback)));
    BitComparer cmp;
    cmp.compare(widen(d.out), widen(f.out), "out");
    cmp.compare(d.last_state.download<float>(), f.last_state.download<float>(), "last_state");
    return cmp.result(fmt::format("subset of channels [0, {}) of every batch row", dsub));
  }

 private:
  std::vector<float> h0sub(std::int64_t dsub) const {
    std::vector<float> v;
    for (std::int64_t b = 0; b < s_.batch; ++b)
      v.insert(v.end(), h0_.begin() + b * s_.D * s_.N, h0_.begin() + (b * s_.D + dsub) * s_.N);
    return v;
  }
  static std::vector<float> widen(const Tensor& t) {
    if (t.dtype() == DType::f32) return t.download<float>();
    const auto bits = t.download<std::uint16_t>();
    std::vector<float> out(bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) {
      const std::uint32_t w = static_cast<std::uint32_t>(bits[i]) << 16;
      std::memcpy(&out[i], &w, 4);  // bf16 is the high half of a float
    }
    return out;
  }
  SelectiveScanArgs make(Context& ctx) const {
    SelectiveScanArgs a;
    const std::vector<std::int64_t> bdl{s_.batch, s_.D, s_.L};
    a.u = upload_as(ctx, u_, s_.dtype, bdl);
    a.delta = upload_as(ctx, dl_, s_.dtype, bdl);
    a.z = upload_as(ctx, z_, s_.dtype, bdl);
    a.Bm = upload_as(ctx, b_, s_.dtype, {s_.batch, s_.G, s_.N, s_.L});
    a.Cm = upload_as(ctx, c_, s_.dtype, {s_.batch, s_.G, s_.N, s_.L});
    a.A = upload_as(ctx, a_, DType::f32, {s_.D, s_.N});
    a.Dskip = upload_as(ctx, dsk_, DType::f32, {s_.D});
    a.delta_bias = upload_as(ctx, bias_, DType::f32, {s_.D});
    if (s_.h0) a.h0 = upload_as(ctx, h0_, DType::f32, {s_.batch, s_.D, s_.N});
    a.delta_softplus = true;
    a.return_last_state = true;
    return a;
  }
  Context ctx_;
  ScanShape s_;
  std::vector<float> u_, dl_, z_, b_, c_, a_, dsk_, bias_, h0_;
  SelectiveScanArgs args_;
  SelectiveScanResult out_;
};

Case scan_case(ScanShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "mamba";
  c.op = s.L == 1 ? "scan_decode" : "selective_scan";
  c.name = fmt::format("mamba/scan B{} D{} N{} L{} G{} {}{}", s.batch, s.D, s.N, s.L, s.G,
                       dtype_name(s.dtype), s.h0 ? " h0" : "");
  c.size = size;
  c.seed = seed;
  c.params = {
      {"batch", s.batch}, {"channels", s.D}, {"state", s.N}, {"length", s.L}, {"groups", s.G}};
  const double P = static_cast<double>(s.batch * s.D * s.L);
  const double Q = static_cast<double>(s.batch * s.G * s.N * s.L);
  const double S = static_cast<double>(s.batch * s.D * s.N);
  const double e = static_cast<double>(dtype_size(s.dtype));
  c.bytes_moved = e * (4 * P + 2 * Q) +
                  4 * (static_cast<double>(s.D * s.N) + 2.0 * s.D + S * ((s.h0 ? 1 : 0) + 1));
  c.flops = P * (20.0 * s.N + 60);
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<ScanInstance>(ctx, s, seed); };
  return c;
}

class ConvInstance : public Instance {
 public:
  ConvInstance(Context& ctx, std::int64_t b, std::int64_t d, std::int64_t l, std::int64_t w,
               std::uint64_t seed)
      : ctx_(ctx), b_(b), d_(d), l_(l), w_(w) {
    x_ = random_normal(static_cast<std::size_t>(b * d * l), seed);
    wt_ = random_normal(static_cast<std::size_t>(d * w), seed + 1, 0.5f);
    bias_ = random_normal(static_cast<std::size_t>(d), seed + 2);
    args_ = make(ctx_);
  }
  void run() override { out_ = causal_conv1d(ctx_, args_).out; }
  Validation validate(Context& fallback) override {
    run();
    BitComparer cmp;
    cmp.compare(out_.download<float>(),
                causal_conv1d(fallback, make(fallback)).out.download<float>(), "out");
    return cmp.result("full");
  }

 private:
  CausalConv1dArgs make(Context& ctx) const {
    CausalConv1dArgs a;
    a.x = upload_as(ctx, x_, DType::f32, {b_, d_, l_});
    a.weight = upload_as(ctx, wt_, DType::f32, {d_, w_});
    a.bias = upload_as(ctx, bias_, DType::f32, {d_});
    a.silu = true;
    return a;
  }
  Context ctx_;
  std::int64_t b_, d_, l_, w_;
  std::vector<float> x_, wt_, bias_;
  CausalConv1dArgs args_;
  Tensor out_;
};

}  // namespace

std::vector<Case> mamba_cases() {
  std::vector<Case> cases;
  std::uint64_t seed = 900;
  const ScanShape small[] = {{1, 64, 16, 256, 1, DType::f32, false},
                             {1, 64, 16, 1, 1, DType::f32, true},
                             {1, 32, 64, 128, 4, DType::bf16, false}};
  for (const auto& s : small) cases.push_back(scan_case(s, SizeClass::small, seed++));
  const ScanShape large[] = {
      {1, 1536, 16, 2048, 1, DType::f32, false},  {8, 1536, 16, 2048, 1, DType::f32, false},
      {8, 1536, 16, 2048, 1, DType::bf16, false}, {1, 5120, 16, 2048, 1, DType::f32, false},
      {64, 768, 16, 197, 1, DType::f32, false},   {1, 1536, 16, 1, 1, DType::f32, true},
      {8, 2048, 16, 4096, 1, DType::f32, false},  {2, 1024, 64, 2048, 4, DType::f32, false}};
  for (const auto& s : large) cases.push_back(scan_case(s, SizeClass::large, seed++));
  for (auto [b, d, l, w, cls] : {std::tuple{1, 64, 512, 4, SizeClass::small},
                                 std::tuple{8, 3072, 2048, 4, SizeClass::large}}) {
    Case c;
    c.family = "mamba";
    c.op = "causal_conv1d";
    c.name = fmt::format("mamba/conv1d B{} D{} L{} W{} silu f32", b, d, l, w);
    c.size = cls;
    c.seed = seed++;
    c.params = {{"batch", b}, {"channels", d}, {"length", l}, {"width", w}};
    const double P = static_cast<double>(b) * d * l;
    c.bytes_moved = 4 * (2 * P + static_cast<double>(d) * w + d);
    c.flops = P * (2.0 * w + 20);
    c.prepare = [b, d, l, w, s = c.seed](Context& ctx) {
      return std::make_unique<ConvInstance>(ctx, b, d, l, w, s);
    };
    cases.push_back(std::move(c));
  }
  for (auto& c : mamba_ext_cases()) cases.push_back(std::move(c));
  return cases;
}

}  // namespace sparq::bench
