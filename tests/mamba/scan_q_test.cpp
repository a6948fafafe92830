// selective_scan_q (specs/mamba_scan.md §6): the scan reading quantized token rows equals the scan
// of the dequantized inputs, bit for bit, on the device and on the fallback, and device ==
// fallback; mixed plain / quantized inputs, int4 / int8 inliers, f32 / f16 / int8 outliers, grouped
// B/C, varlen with h0; bad quantized arguments raise sparq::Error.
#include <fmt/format.h>

#include "mamba/mamba_test_util.h"
#include "runtime/runtime_test_util.h"

namespace sparq::test::mamba_t {
namespace {

struct QCase {
  std::int64_t batch = 2, D = 24, L = 37, N = 16, G = 1;
  bool qu = true, qdelta = false, qz = false, qB = false, qC = false;
  InlierBits bits = InlierBits::Int4;
  OutlierFormat fmt = OutlierFormat::F32;
  int K = 3;
  std::vector<std::int32_t> cu;
  std::string label() const {
    return fmt::format("Bt{} D{} L{} N{} G{} q[u{} dl{} z{} B{} C{}] bits{} fmt{} K{} varlen{}",
                       batch, D, L, N, G, qu, qdelta, qz, qB, qC, static_cast<int>(bits),
                       static_cast<int>(fmt), K, cu.empty() ? 0 : cu.size() - 1);
  }
};

// [b, c, l] (plain layout, c channels) -> [b, l, c] token rows, and back.
std::vector<float> to_rows(const std::vector<float>& v, std::int64_t b, std::int64_t c,
                           std::int64_t l) {
  std::vector<float> r(v.size());
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t j = 0; j < c; ++j)
      for (std::int64_t t = 0; t < l; ++t)
        r[static_cast<std::size_t>((i * l + t) * c + j)] =
            v[static_cast<std::size_t>((i * c + j) * l + t)];
  return r;
}
std::vector<float> from_rows(const std::vector<float>& r, std::int64_t b, std::int64_t c,
                             std::int64_t l) {
  std::vector<float> v(r.size());
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t j = 0; j < c; ++j)
      for (std::int64_t t = 0; t < l; ++t)
        v[static_cast<std::size_t>((i * c + j) * l + t)] =
            r[static_cast<std::size_t>((i * l + t) * c + j)];
  return v;
}

struct QRun {
  ScanRun q, ref;
};

// Runs selective_scan_q on ctx and selective_scan on the dequantized inputs (same ctx).
QRun run_case(Context& ctx, const QCase& qc, std::uint64_t seed) {
  ScanCase c;
  c.batch = qc.batch;
  c.D = qc.D;
  c.L = qc.L;
  c.N = qc.N;
  c.G = qc.G;
  c.has_D = c.has_z = c.has_bias = c.softplus = true;
  c.has_h0 = !qc.cu.empty();
  c.cu = qc.cu;
  auto in = make_input(c, seed);
  // A few planted outlier channels in u / z rows so the side lists are used.
  for (std::size_t i = 0; i < in.u.size(); i += 53) in.u[i] *= 30.0f;
  for (std::size_t i = 5; i < in.z.size(); i += 71) in.z[i] *= 25.0f;
  SelectiveScanArgs plain = upload_args(ctx, c, in);
  OutlierQuantParams p;
  p.bits = qc.bits;
  p.outlier_format = qc.fmt;
  p.max_outliers = qc.K;
  p.window = 2;
  SelectiveScanQArgs qa;
  qa.u = plain.u;
  qa.delta = plain.delta;
  qa.z = plain.z;
  qa.Bm = plain.Bm;
  qa.Cm = plain.Cm;
  qa.A = plain.A;
  qa.Dskip = plain.Dskip;
  qa.delta_bias = plain.delta_bias;
  qa.h0 = plain.h0;
  qa.cu_seqlens = plain.cu_seqlens;
  qa.delta_softplus = true;
  qa.return_last_state = true;
  SelectiveScanArgs ref = plain;
  // Quantizes plain values v ([b, ch, l]) as rows; `dst` gets the rows, `back` the dequantized
  // tensor in the plain layout with `shape`.
  auto quant = [&](const std::vector<float>& v, std::int64_t ch, ScanInput& dst, Tensor& back,
                   std::vector<std::int64_t> shape) {
    const auto rows = to_rows(v, qc.batch, ch, qc.L);
    QuantizedRows q = outlier_quantize(ctx, ctx.upload(rows, DType::f32, {qc.batch, qc.L, ch}), p);
    const auto deq = dequantize(ctx, q).download<float>();
    back = ctx.upload(from_rows(deq, qc.batch, ch, qc.L), DType::f32, std::move(shape));
    dst = std::move(q);
  };
  const std::vector<std::int64_t> bdl{qc.batch, qc.D, qc.L};
  if (qc.qu) quant(in.u, qc.D, qa.u, ref.u, bdl);
  if (qc.qdelta) quant(in.delta, qc.D, qa.delta, ref.delta, bdl);
  if (qc.qz) quant(in.z, qc.D, qa.z, ref.z, bdl);
  const std::vector<std::int64_t> bgnl{qc.batch, qc.G, qc.N, qc.L};
  if (qc.qB) quant(in.B, qc.G * qc.N, qa.Bm, ref.Bm, bgnl);
  if (qc.qC) quant(in.C, qc.G * qc.N, qa.Cm, ref.Cm, bgnl);
  QRun r;
  auto s = selective_scan_q(ctx, qa);
  r.q.out = download_f32(s.out);
  r.q.last = s.last_state.download<float>();
  r.ref = run_scan(ctx, ref);
  return r;
}

TEST(MambaScanQ, EqualsScanOfDequantizedAndDeviceMatchesFallback) {
  auto dev = device_context();
  auto cpu = fallback_context();
  std::vector<QCase> cases;
  {
    QCase c;  // u only, int4, f32 outliers
    cases.push_back(c);
  }
  {
    QCase c;  // u, delta, z int8 with f16 outliers; B, C plain grouped
    c.qdelta = c.qz = true;
    c.bits = InlierBits::Int8;
    c.fmt = OutlierFormat::F16;
    c.G = 2;
    cases.push_back(c);
  }
  {
    QCase c;  // B and C quantized (int8 outliers), G = 3, u plain
    c.qu = false;
    c.qB = c.qC = true;
    c.G = 3;
    c.fmt = OutlierFormat::Int8;
    cases.push_back(c);
  }
  {
    QCase c;  // everything quantized, varlen with h0, N = 4, K = 0
    c.batch = 1;
    c.L = 41;
    c.N = 4;
    c.qdelta = c.qz = c.qB = c.qC = true;
    c.K = 0;
    c.cu = {0, 9, 9, 30, 41};
    cases.push_back(c);
  }
  {
    QCase c;  // everything quantized, int8 / int8 outliers, L = 1 (decode), D odd
    c.D = 7;
    c.L = 1;
    c.qdelta = c.qz = c.qB = c.qC = true;
    c.bits = InlierBits::Int8;
    c.fmt = OutlierFormat::Int8;
    cases.push_back(c);
  }
  std::uint64_t seed = 4100;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.label());
    const QRun d = run_case(dev, c, seed);
    const QRun f = run_case(cpu, c, seed);
    ++seed;
    EXPECT_EQ(compare_bits(d.q.out, d.ref.out), "") << "device: scan_q vs scan(dequantize)";
    EXPECT_EQ(compare_bits(d.q.last, d.ref.last), "") << "device last_state";
    EXPECT_EQ(compare_bits(f.q.out, f.ref.out), "") << "fallback: scan_q vs scan(dequantize)";
    EXPECT_EQ(compare_bits(f.q.last, f.ref.last), "") << "fallback last_state";
    EXPECT_EQ(compare_bits(d.q.out, f.q.out), "") << "device vs fallback";
    EXPECT_EQ(compare_bits(d.q.last, f.q.last), "") << "device vs fallback last_state";
  }
}

// The schedule knobs (scan_tune_test.cpp's setting S1: fast exp, register states, float4 steps in
// unrolled 8-step tiles, 64-lane work-groups) on quantized rows: still the fallback's bits.
TEST(MambaScanQ, KnobSettingMatchesFallback) {
  auto dev = device_context();
  auto cpu = fallback_context();
  QCase c;  // everything quantized, int8 / f16 outliers, varlen restarts inside tiles
  c.batch = 1;
  c.D = 6;
  c.L = 29;
  c.qdelta = c.qz = c.qB = c.qC = true;
  c.bits = InlierBits::Int8;
  c.fmt = OutlierFormat::F16;
  c.cu = {0, 11, 11, 29};
  const QRun f = run_case(cpu, c, 4200);
  const ScopedEnv tune("SPARQ_TUNE_SCAN", "exp=1,per=1,unroll=4,vec=1,wg=64,tile=8");
  const QRun d = run_case(dev, c, 4200);
  EXPECT_EQ(compare_bits(d.q.out, f.q.out), "") << "device vs fallback";
  EXPECT_EQ(compare_bits(d.q.last, f.q.last), "") << "device vs fallback last_state";
}

TEST(MambaScanQ, BadArguments) {
  auto ctx = fallback_context();
  ScanCase c;
  c.D = 8;
  c.L = 5;
  c.N = 4;
  const auto in = make_input(c, 7);
  const SelectiveScanArgs plain = upload_args(ctx, c, in);
  OutlierQuantParams p;
  p.max_outliers = 2;
  p.k_sigma = 1.0f;  // flags the two planted channels of 8
  auto rows = [&](std::int64_t ch) {
    std::vector<float> x(static_cast<std::size_t>(c.L * ch), 0.5f);
    x[1] = 40.0f;
    x[3] = -40.0f;
    return outlier_quantize(ctx, ctx.upload(x, DType::f32, {1, c.L, ch}), p);
  };
  SelectiveScanQArgs a;
  a.u = plain.u;
  a.delta = plain.delta;
  a.Bm = plain.Bm;
  a.Cm = plain.Cm;
  a.A = plain.A;
  EXPECT_NO_THROW(selective_scan_q(ctx, a));
  a.u = rows(c.D);
  EXPECT_NO_THROW(selective_scan_q(ctx, a));
  a.delta = rows(c.D + 1);  // channels != D
  EXPECT_THROW(selective_scan_q(ctx, a), Error);
  a.delta = plain.delta;
  a.Bm = rows(6);  // not a multiple of N = 4
  EXPECT_THROW(selective_scan_q(ctx, a), Error);
  a.Bm = rows(12);  // G = 3 does not divide D = 8
  EXPECT_THROW(selective_scan_q(ctx, a), Error);
  a.Bm = plain.Bm;
  {
    QuantizedRows q = rows(c.D);  // a list that is not ascending
    ASSERT_EQ(q.outlier_count.download<std::int32_t>()[0], 2);
    auto idx = q.outlier_idx.download<std::int32_t>();
    std::swap(idx[0], idx[1]);
    q.outlier_idx = ctx.upload(idx, DType::i32, {1, c.L, 2});
    a.u = q;
    EXPECT_THROW(selective_scan_q(ctx, a), Error);
    auto cnt = q.outlier_count.download<std::int32_t>();
    cnt[0] = 3;  // more than K
    q.outlier_count = ctx.upload(cnt, DType::i32, {1, c.L});
    a.u = q;
    EXPECT_THROW(selective_scan_q(ctx, a), Error);
  }
  {
    QuantizedRows q = rows(c.D);  // rows of another length
    q.scales = ctx.upload(std::vector<float>(4, 1.0f), DType::f32, {1, 4});
    a.u = q;
    EXPECT_THROW(selective_scan_q(ctx, a), Error);
  }
}

}  // namespace
}  // namespace sparq::test::mamba_t
