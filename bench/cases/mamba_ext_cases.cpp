// Mamba cases beyond the Mamba-1 scan (part of mamba_cases()): the fused quantized scan
// (selective_scan_q), Mamba-2 SSD at real model shapes (prefill and decode), Hadamard rotation +
// int8 quantization, and the W8A8 / W4A8 projection through CLBlast next to CLBlast's own fp32
// SGEMM on the same shapes.
//
// Counting (docs/mamba.md):
//  scan_q: bytes = per quantized input (u, delta, z) B*L*(code bytes of D + 8 + 8K) + fp32 B, C,
//          out, A, D, bias, last state; ops as the fp32 scan, P*(20N + 60).
//  ssd:    bytes = e*(Bt*L*H*P*3 (x, z, out) + Bt*L*H (dt) + 2*Bt*L*G*N) + 4*(3H + S*([h0] + 1)),
//          S = Bt*H*P*N; ops = Bt*L*H*(60 + P*(23 + 3N)) (exp + softplus per head and step, one
//          multiply and two fma per state step, silu gate per output).
//  hadamard_quantize: bytes = 4RC + RC (int8 codes) + 8R; ops = R*C*(m + 4).
//  quant_linear: bytes = R*K + O*K (codes) + 4(R + O + O) + 4*R*O; ops = 2*R*O*K.
//  clblast sgemm (fp32 reference): bytes = 4(R*K + O*K + R*O); ops = 2*R*O*K.
// Validation is device vs fallback bit for bit: scan_q on batch row 0 (prefix views of the rows),
// SSD on batch row 0 and the heads of group 0 (or 8 heads), the rest in full; the CLBlast
// reference uses integer-valued operands so its fp32 result is exact and is compared with an
// integer product.
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120  // clblast.h includes CL/cl.h itself
#endif
#include <clblast.h>
#include <fmt/format.h>

#include <cstring>

#include "cases/case.h"
#include "context_impl.h"

namespace sparq::bench {

std::vector<Case> mamba_ext_cases();

namespace {

using namespace sparq::mamba;

std::vector<float> widen(const Tensor& t) {
  if (t.dtype() == DType::f32) return t.download<float>();
  const auto bits = t.download<std::uint16_t>();
  std::vector<float> out(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) {
    const std::uint32_t w = static_cast<std::uint32_t>(bits[i]) << 16;
    std::memcpy(&out[i], &w, 4);  // bf16 is the high half of a float
  }
  return out;
}

// ---- selective_scan_q ----

struct ScanQShape {
  std::int64_t batch, D, N, L;
  InlierBits bits;
  int K;
};

class ScanQInstance : public Instance {
 public:
  ScanQInstance(Context& ctx, ScanQShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    const auto P = static_cast<std::size_t>(s.batch * s.D * s.L);
    const auto Q = static_cast<std::size_t>(s.batch * s.N * s.L);
    u_ = random_normal(P, seed);  // token rows [B, L, D]
    dl_ = random_normal(P, seed + 1);
    z_ = random_normal(P, seed + 2);
    for (std::size_t i = 0; i < P; i += 97) u_[i] *= 20.0f;
    b_ = random_normal(Q, seed + 3);
    c_ = random_normal(Q, seed + 4);
    a_ = random_normal(static_cast<std::size_t>(s.D * s.N), seed + 5, 0.5f);
    for (auto& x : a_) x = -(x < 0 ? -x : x) - 0.05f;
    dsk_ = random_normal(static_cast<std::size_t>(s.D), seed + 6);
    bias_ = random_normal(static_cast<std::size_t>(s.D), seed + 7, 0.5f);
    args_ = make(ctx_, s_.batch);
  }
  void run() override { out_ = selective_scan_q(ctx_, args_); }
  Validation validate(Context& fallback) override {
    // Batch row 0: the quantized rows of b = 0 are the prefix [1, L, D] of each tensor.
    auto first = [&](Context& ctx, const SelectiveScanQArgs& a) {
      SelectiveScanQArgs v = a;
      for (ScanInput* in : {&v.u, &v.delta, &v.z}) {
        auto& q = std::get<QuantizedRows>(*in);
        auto pre = [&](Tensor& t) {
          auto shape = t.shape();
          shape[0] = 1;
          t = t.view(shape, {}, 0);
        };
        for (Tensor* t : {&q.codes, &q.scales, &q.outlier_count, &q.outlier_idx, &q.outlier_val})
          pre(*t);
      }
      auto& B = std::get<Tensor>(v.Bm);
      auto& C = std::get<Tensor>(v.Cm);
      B = B.view({1, s_.N, s_.L}, {});
      C = C.view({1, s_.N, s_.L}, {});
      (void)ctx;
      return v;
    };
    const auto d = selective_scan_q(ctx_, first(ctx_, args_));
    const auto f = selective_scan_q(fallback, first(fallback, make(fallback, 1)));
    BitComparer cmp;
    cmp.compare(d.out.download<float>(), f.out.download<float>(), "out");
    cmp.compare(d.last_state.download<float>(), f.last_state.download<float>(), "last_state");
    return cmp.result("batch row 0, all channels");
  }

 private:
  SelectiveScanQArgs make(Context& ctx, std::int64_t batch) const {
    OutlierQuantParams p;
    p.bits = s_.bits;
    p.max_outliers = s_.K;
    auto rows = [&](const std::vector<float>& v) {
      const std::vector<float> part(v.begin(), v.begin() + batch * s_.L * s_.D);
      return outlier_quantize(ctx, ctx.upload(part, DType::f32, {batch, s_.L, s_.D}), p);
    };
    auto plain = [&](const std::vector<float>& v, std::vector<std::int64_t> shape, std::size_t n) {
      return upload_as(ctx,
                       std::vector<float>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)),
                       DType::f32, std::move(shape));
    };
    SelectiveScanQArgs a;
    a.u = rows(u_);
    a.delta = rows(dl_);
    a.z = rows(z_);
    const auto q = static_cast<std::size_t>(batch * s_.N * s_.L);
    a.Bm = plain(b_, {batch, s_.N, s_.L}, q);
    a.Cm = plain(c_, {batch, s_.N, s_.L}, q);
    a.A = plain(a_, {s_.D, s_.N}, a_.size());
    a.Dskip = plain(dsk_, {s_.D}, dsk_.size());
    a.delta_bias = plain(bias_, {s_.D}, bias_.size());
    a.delta_softplus = true;
    a.return_last_state = true;
    ctx.finish();
    return a;
  }
  Context ctx_;
  ScanQShape s_;
  std::vector<float> u_, dl_, z_, b_, c_, a_, dsk_, bias_;
  SelectiveScanQArgs args_;
  SelectiveScanResult out_;
};

Case scan_q_case(ScanQShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "mamba";
  c.op = "selective_scan_q";
  c.name = fmt::format("mamba/scan_q B{} D{} N{} L{} u,delta,z {} K{}", s.batch, s.D, s.N, s.L,
                       s.bits == InlierBits::Int4 ? "int4" : "int8", s.K);
  c.size = size;
  c.seed = seed;
  c.params = {{"batch", s.batch}, {"channels", s.D}, {"state", s.N},
              {"length", s.L},    {"outliers", s.K}, {"bits", s.bits == InlierBits::Int4 ? 4 : 8}};
  const double rows = static_cast<double>(s.batch * s.L);
  const double code_bytes = s.bits == InlierBits::Int4 ? (s.D + 1) / 2 : s.D;
  const double per_q = rows * (code_bytes + 8 + 8.0 * s.K);
  const double P = static_cast<double>(s.batch * s.D * s.L);
  const double Q = static_cast<double>(s.batch * s.N * s.L);
  const double S = static_cast<double>(s.batch * s.D * s.N);
  c.bytes_moved = 3 * per_q + 4 * (P + 2 * Q + static_cast<double>(s.D * s.N) + 2.0 * s.D + S);
  c.flops = P * (20.0 * s.N + 60);
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<ScanQInstance>(ctx, s, seed); };
  return c;
}

// ---- Mamba-2 SSD ----

struct SsdShape {
  const char* model;
  std::int64_t batch, L, H, P, N, G;
  DType dtype;
  bool h0;
};

class SsdInstance : public Instance {
 public:
  SsdInstance(Context& ctx, SsdShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    const auto X = static_cast<std::size_t>(s.batch * s.L * s.H * s.P);
    const auto T = static_cast<std::size_t>(s.batch * s.L * s.H);
    const auto BC = static_cast<std::size_t>(s.batch * s.L * s.G * s.N);
    x_ = random_normal(X, seed);
    z_ = random_normal(X, seed + 1);
    dt_ = random_normal(T, seed + 2);
    b_ = random_normal(BC, seed + 3);
    c_ = random_normal(BC, seed + 4);
    a_ = random_normal(static_cast<std::size_t>(s.H), seed + 5);
    for (auto& v : a_) v = -(v < 0 ? -v : v) - 0.1f;
    dsk_ = random_normal(static_cast<std::size_t>(s.H), seed + 6);
    bias_ = random_normal(static_cast<std::size_t>(s.H), seed + 7, 0.5f);
    if (s.h0) h0_ = random_normal(static_cast<std::size_t>(s.batch * s.H * s.P * s.N), seed + 8);
    args_ = make(ctx_);
  }
  void run() override { out_ = ssd_scan(ctx_, args_); }
  Validation validate(Context& fallback) override {
    const std::int64_t hsub = s_.G > 1 ? s_.H / s_.G : std::min<std::int64_t>(s_.H, 8);
    auto sub = [&](Context& ctx, const SsdArgs& a) {
      SsdArgs v = a;
      v.x = a.x.view({1, s_.L, hsub, s_.P}, a.x.strides());
      v.z = a.z.view({1, s_.L, hsub, s_.P}, a.z.strides());
      v.dt = a.dt.view({1, s_.L, hsub}, a.dt.strides());
      v.Bm = a.Bm.view({1, s_.L, 1, s_.N}, a.Bm.strides());
      v.Cm = a.Cm.view({1, s_.L, 1, s_.N}, a.Cm.strides());
      v.A = a.A.view({hsub}, {});
      v.Dskip = a.Dskip.view({hsub}, {});
      v.dt_bias = a.dt_bias.view({hsub}, {});
      if (s_.h0) {
        const std::vector<float> part(h0_.begin(), h0_.begin() + hsub * s_.P * s_.N);
        v.initial_states = ctx.upload(part, DType::f32, {1, hsub, s_.P, s_.N});
      }
      return v;
    };
    const auto d = ssd_scan(ctx_, sub(ctx_, args_));
    const auto f = ssd_scan(fallback, sub(fallback, make(fallback)));
    BitComparer cmp;
    cmp.compare(widen(d.out), widen(f.out), "out");
    cmp.compare(d.final_states.download<float>(), f.final_states.download<float>(), "final_states");
    return cmp.result(fmt::format("batch row 0, heads [0, {})", hsub));
  }

 private:
  SsdArgs make(Context& ctx) const {
    SsdArgs a;
    a.x = upload_as(ctx, x_, s_.dtype, {s_.batch, s_.L, s_.H, s_.P});
    a.z = upload_as(ctx, z_, s_.dtype, {s_.batch, s_.L, s_.H, s_.P});
    a.dt = upload_as(ctx, dt_, s_.dtype, {s_.batch, s_.L, s_.H});
    a.Bm = upload_as(ctx, b_, s_.dtype, {s_.batch, s_.L, s_.G, s_.N});
    a.Cm = upload_as(ctx, c_, s_.dtype, {s_.batch, s_.L, s_.G, s_.N});
    a.A = upload_as(ctx, a_, DType::f32, {s_.H});
    a.Dskip = upload_as(ctx, dsk_, DType::f32, {s_.H});
    a.dt_bias = upload_as(ctx, bias_, DType::f32, {s_.H});
    if (s_.h0) a.initial_states = upload_as(ctx, h0_, DType::f32, {s_.batch, s_.H, s_.P, s_.N});
    a.dt_softplus = true;
    a.return_final_states = true;
    return a;
  }
  Context ctx_;
  SsdShape s_;
  std::vector<float> x_, z_, dt_, b_, c_, a_, dsk_, bias_, h0_;
  SsdArgs args_;
  SsdResult out_;
};

Case ssd_case(SsdShape s, SizeClass size, std::uint64_t seed) {
  Case c;
  c.family = "mamba";
  c.op = s.L == 1 ? "ssd_decode" : "ssd_scan";
  c.name = fmt::format("mamba/ssd {} B{} L{} H{} P{} N{} G{} {}{}", s.model, s.batch, s.L, s.H, s.P,
                       s.N, s.G, dtype_name(s.dtype), s.h0 ? " h0" : "");
  c.size = size;
  c.seed = seed;
  c.params = {{"batch", s.batch}, {"length", s.L}, {"heads", s.H},
              {"head_dim", s.P},  {"state", s.N},  {"groups", s.G}};
  const double X = static_cast<double>(s.batch * s.L * s.H * s.P);
  const double T = static_cast<double>(s.batch * s.L * s.H);
  const double BC = static_cast<double>(s.batch * s.L * s.G * s.N);
  const double S = static_cast<double>(s.batch * s.H * s.P * s.N);
  const double e = static_cast<double>(dtype_size(s.dtype));
  c.bytes_moved = e * (3 * X + T + 2 * BC) + 4 * (3.0 * s.H + S * ((s.h0 ? 1 : 0) + 1));
  c.flops = T * (60 + static_cast<double>(s.P) * (23 + 3.0 * s.N));
  c.prepare = [s, seed](Context& ctx) { return std::make_unique<SsdInstance>(ctx, s, seed); };
  return c;
}

// ---- Hadamard rotation + int8 quantization ----

class HadamardInstance : public Instance {
 public:
  HadamardInstance(Context& ctx, std::int64_t R, std::int64_t C, std::uint64_t seed)
      : ctx_(ctx), R_(R), C_(C) {
    x_ = random_normal(static_cast<std::size_t>(R * C), seed);
    xt_ = ctx_.upload(x_, DType::f32, {1, R, C});
  }
  void run() override { q_ = hadamard_quantize(ctx_, xt_); }
  Validation validate(Context& fallback) override {
    const auto f = hadamard_quantize(fallback, fallback.upload(x_, DType::f32, {1, R_, C_}));
    BitComparer cmp;
    auto as_f = [](const std::vector<std::int8_t>& v) {
      return std::vector<float>(v.begin(), v.end());
    };
    cmp.compare(as_f(q_.codes.download<std::int8_t>()), as_f(f.codes.download<std::int8_t>()),
                "codes");
    cmp.compare(q_.scales.download<float>(), f.scales.download<float>(), "scales");
    return cmp.result("full");
  }

 private:
  Context ctx_;
  std::int64_t R_, C_;
  std::vector<float> x_;
  Tensor xt_;
  QuantizedRows q_;
};

// ---- W8A8 / W4A8 projection and the CLBlast fp32 reference ----

struct LinShape {
  const char* what;
  std::int64_t R, K, O;
};

class QuantLinearInstance : public Instance {
 public:
  QuantLinearInstance(Context& ctx, LinShape s, bool w4, std::uint64_t seed)
      : ctx_(ctx), s_(s), w4_(w4) {
    x_ = random_normal(static_cast<std::size_t>(s.R * s.K), seed);
    w_ = random_normal(static_cast<std::size_t>(s.O * s.K), seed + 1, 0.05f);
    args_ = make(ctx_);
  }
  void run() override { out_ = quant_linear(ctx_, args_); }
  Validation validate(Context& fallback) override {
    BitComparer cmp;
    cmp.compare(out_.download<float>(), quant_linear(fallback, make(fallback)).download<float>(),
                "out");
    return cmp.result("full");
  }

 private:
  QuantLinearArgs make(Context& ctx) const {
    OutlierQuantParams p;
    p.bits = InlierBits::Int8;
    p.max_outliers = 0;
    QuantLinearArgs a;
    a.x = outlier_quantize(ctx, ctx.upload(x_, DType::f32, {1, s_.R, s_.K}), p);
    p.bits = w4_ ? InlierBits::Int4 : InlierBits::Int8;
    a.w = outlier_quantize(ctx, ctx.upload(w_, DType::f32, {1, s_.O, s_.K}), p);
    ctx.finish();
    return a;
  }
  Context ctx_;
  LinShape s_;
  bool w4_;
  std::vector<float> x_, w_;
  QuantLinearArgs args_;
  Tensor out_;
};

// CLBlast's own fp32 SGEMM out = x W^T on the same shape (not a sparq op: the reference the
// quantized projection is compared with). Operands are small integers so the fp32 result is
// exact and validates against an integer product.
class SgemmInstance : public Instance {
 public:
  SgemmInstance(Context& ctx, LinShape s, std::uint64_t seed) : ctx_(ctx), s_(s) {
    auto ints = [](std::size_t n, std::uint64_t sd) {
      auto v = random_normal(n, sd);
      for (auto& x : v) x = static_cast<float>(static_cast<int>(x * 1.5f));  // |x| <= ~6
      return v;
    };
    x_ = ints(static_cast<std::size_t>(s.R * s.K), seed);
    w_ = ints(static_cast<std::size_t>(s.O * s.K), seed + 1);
    xt_ = ctx_.upload(x_, DType::f32, {s.R, s.K});
    wt_ = ctx_.upload(w_, DType::f32, {s.O, s.K});
    out_ = ctx_.upload(std::vector<float>(static_cast<std::size_t>(s.R * s.O)), DType::f32,
                       {s.R, s.O});
  }
  void run() override {
    auto& dev = *ctx_.impl()->device;
    cl_command_queue q = dev.queue()();
    cl::Event first;
    if (dev.profiling()) dev.queue().enqueueMarkerWithWaitList(nullptr, &first);
    cl_event ev = nullptr;
    const auto st = clblast::Gemm<float>(
        clblast::Layout::kRowMajor, clblast::Transpose::kNo, clblast::Transpose::kYes,
        static_cast<std::size_t>(s_.R), static_cast<std::size_t>(s_.O),
        static_cast<std::size_t>(s_.K), 1.0f, xt_.storage()->buffer(), 0,
        static_cast<std::size_t>(s_.K), wt_.storage()->buffer(), 0, static_cast<std::size_t>(s_.K),
        0.0f, out_.storage()->buffer(), 0, static_cast<std::size_t>(s_.O), &q, &ev);
    if (st != clblast::StatusCode::kSuccess)
      throw std::runtime_error(fmt::format("CLBlast Gemm failed: {}", static_cast<int>(st)));
    if (ev) {
      cl::Event done(ev);
      if (dev.profiling()) dev.record_span("clblast_sgemm", "clblast::Gemm", first, done);
    }
  }
  Validation validate(Context&) override {
    const auto got = out_.download<float>();
    std::vector<float> want(got.size());
    for (std::int64_t r = 0; r < s_.R; ++r)
      for (std::int64_t o = 0; o < s_.O; ++o) {
        std::int64_t acc = 0;
        for (std::int64_t k = 0; k < s_.K; ++k)
          acc += static_cast<std::int64_t>(x_[static_cast<std::size_t>(r * s_.K + k)]) *
                 static_cast<std::int64_t>(w_[static_cast<std::size_t>(o * s_.K + k)]);
        want[static_cast<std::size_t>(r * s_.O + o)] = static_cast<float>(acc);
      }
    BitComparer cmp;
    cmp.compare(got, want, "out (integer-valued operands, exact)");
    return cmp.result("full, against the int64 product");
  }

 private:
  Context ctx_;
  LinShape s_;
  std::vector<float> x_, w_;
  Tensor xt_, wt_, out_;
};

Case linear_case(LinShape s, int kind, SizeClass size, std::uint64_t seed) {
  // kind 0: W8A8, 1: W4A8, 2: CLBlast fp32 SGEMM reference.
  static const char* names[] = {"w8a8", "w4a8", "sgemm_fp32"};
  Case c;
  c.family = "mamba";
  c.op = kind == 2 ? "clblast_sgemm_fp32" : "quant_linear";
  c.name = fmt::format("mamba/linear {} {} R{} K{} O{}", names[kind], s.what, s.R, s.K, s.O);
  c.size = size;
  c.seed = seed;
  c.params = {{"rows", s.R}, {"k", s.K}, {"out", s.O}, {"kind", kind}};
  const double R = static_cast<double>(s.R), K = static_cast<double>(s.K),
               O = static_cast<double>(s.O);
  c.bytes_moved = kind == 2 ? 4 * (R * K + O * K + R * O)
                            : R * K + (kind == 1 ? 0.5 : 1.0) * O * K + 4 * (R + O + R * O);
  c.flops = 2 * R * O * K;
  c.prepare = [s, kind, seed](Context& ctx) -> std::unique_ptr<Instance> {
    if (kind == 2) return std::make_unique<SgemmInstance>(ctx, s, seed);
    return std::make_unique<QuantLinearInstance>(ctx, s, kind == 1, seed);
  };
  return c;
}

}  // namespace

std::vector<Case> mamba_ext_cases() {
  std::vector<Case> cases;
  std::uint64_t seed = 1900;
  cases.push_back(scan_q_case({1, 64, 16, 128, InlierBits::Int4, 4}, SizeClass::small, seed++));
  for (auto bits : {InlierBits::Int4, InlierBits::Int8})
    cases.push_back(scan_q_case({8, 2048, 16, 4096, bits, 8}, SizeClass::large, seed++));
  cases.push_back(
      ssd_case({"tiny", 1, 64, 4, 16, 32, 2, DType::f32, true}, SizeClass::small, seed++));
  const SsdShape large[] = {{"mamba2-2.7b", 1, 2048, 80, 64, 128, 1, DType::f32, false},
                            {"mamba2-2.7b", 1, 2048, 80, 64, 128, 1, DType::bf16, false},
                            {"mamba2-2.7b", 8, 1, 80, 64, 128, 1, DType::f32, true},
                            {"nemotron-h-like", 1, 2048, 128, 64, 128, 8, DType::bf16, false},
                            {"zamba2-like", 1, 2048, 80, 64, 64, 1, DType::bf16, false}};
  for (const auto& s : large) cases.push_back(ssd_case(s, SizeClass::large, seed++));
  for (auto [R, C, cls] :
       {std::tuple{64, 256, SizeClass::small}, std::tuple{4096, 4096, SizeClass::large}}) {
    Case c;
    c.family = "mamba";
    c.op = "hadamard_quantize";
    c.name = fmt::format("mamba/hadamard_quantize R{} C{} int8", R, C);
    c.size = cls;
    c.seed = seed++;
    c.params = {{"rows", R}, {"channels", C}};
    int m = 0;
    while ((1 << m) < C) ++m;
    const double RC = static_cast<double>(R) * C;
    c.bytes_moved = 5 * RC + 8.0 * R;
    c.flops = RC * (m + 4);
    c.prepare = [R, C, s = c.seed](Context& ctx) {
      return std::make_unique<HadamardInstance>(ctx, R, C, s);
    };
    cases.push_back(std::move(c));
  }
  // No small linear case: CLBlast builds its GEMM kernels in every process (tens of seconds on
  // PoCL), and tests/mamba/quant_linear_test.cpp already checks the CLBlast path against the
  // fallback once.
  // Mamba-2 2.7B in_proj (d_model 2560 -> 2*5120 + 2*128 + 80) and out_proj (5120 -> 2560).
  for (LinShape s : {LinShape{"mamba2-2.7b in_proj", 2048, 2560, 10576},
                     LinShape{"mamba2-2.7b out_proj", 2048, 5120, 2560}})
    for (int kind : {0, 1, 2}) cases.push_back(linear_case(s, kind, SizeClass::large, seed++));
  return cases;
}

}  // namespace sparq::bench
