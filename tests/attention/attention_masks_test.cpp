// Masks and logit hooks (AttentionOptions::masks, attention_common.h HOOKS): kernel == fallback
// bit for bit in dense, sparse and paged decode; prefill row == decode row; hostile options
// refused. Tiny shapes (CI budget).
#include <gtest/gtest.h>

#include <cmath>

#include "attention_test_util.h"
#include "sparq/sparse.h"

namespace sparq::test::attn {
namespace {

struct Hooked {
  Tensor slopes, sinks, pad;
};

AttentionOptions hooked_options(Context& ctx, int b, int hq, std::int64_t lk, bool causal,
                                Hooked& keep) {
  std::vector<float> sl(hq), sk(hq);
  for (int h = 0; h < hq; ++h) {
    sl[h] = 0.05f * static_cast<float>(h + 1);
    sk[h] = 0.5f - 0.3f * static_cast<float>(h);
  }
  std::vector<std::uint8_t> pad(static_cast<std::size_t>(b * lk), 1);
  for (std::int64_t j = 0; j < lk; j += 7) pad[static_cast<std::size_t>(j)] = 0;  // batch 0
  keep.slopes = ctx.upload(sl, DType::f32, {hq});
  keep.sinks = ctx.upload(sk, DType::f32, {hq});
  keep.pad = ctx.upload(pad, DType::u8, {b, lk});
  AttentionOptions o;
  o.causal = causal;
  o.return_lse = true;
  o.masks.window_left = 40;
  o.masks.window_right = causal ? -1 : 9;
  o.masks.softcap = 3.0f;
  o.masks.alibi_slopes = keep.slopes;
  o.masks.sinks = keep.sinks;
  o.masks.key_padding = keep.pad;
  return o;
}

TEST(AttentionMasks, DenseKernelMatchesFallback) {
  Context dev = device_context(), cpu = fallback_context();
  const int b = 2, hq = 4, hkv = 2, d = 64;
  for (bool causal : {true, false}) {
    const std::int64_t lq = 70, lk = 100;
    auto q = random_normal(static_cast<std::size_t>(b * hq * lq * d), 11, 2.0f);
    auto k = random_normal(static_cast<std::size_t>(b * hkv * lk * d), 12, 2.0f);
    auto v = random_normal(static_cast<std::size_t>(b * hkv * lk * d), 13);
    auto Q = upload_pair(dev, cpu, q, DType::f32, {b, hq, lq, d});
    auto K = upload_pair(dev, cpu, k, DType::f32, {b, hkv, lk, d});
    auto V = upload_pair(dev, cpu, v, DType::f32, {b, hkv, lk, d});
    Hooked hd, hc;
    auto od = hooked_options(dev, b, hq, lk, causal, hd);
    auto oc = hooked_options(cpu, b, hq, lk, causal, hc);
    expect_same(attention(dev, Q.dev, K.dev, V.dev, od), attention(cpu, Q.cpu, K.cpu, V.cpu, oc),
                causal ? "dense causal" : "dense");
    // The dense index through the sparse kernel gives the dense bits with the same hooks.
    const SparseIndex xd = dense_index(dev, b, hq, lq, lk, causal);
    const SparseIndex xc = dense_index(cpu, b, hq, lq, lk, causal);
    const auto sd = attention(dev, Q.dev, K.dev, V.dev, xd, od);
    const auto sc = attention(cpu, Q.cpu, K.cpu, V.cpu, xc, oc);
    expect_same(sd, sc, "sparse dense-index");
    expect_same(sd, attention(cpu, Q.cpu, K.cpu, V.cpu, oc), "sparse == dense");
  }
}

// Sliding window == A-shape exact (sink 0) index; prefill rows == paged decode rows.
TEST(AttentionMasks, WindowEqualsAShapeAndDecodeEqualsPrefill) {
  Context dev = device_context(), cpu = fallback_context();
  const int hq = 2, hkv = 1, d = 64;
  const std::int64_t l = 130;
  auto q = random_normal(static_cast<std::size_t>(hq * l * d), 21);
  auto k = random_normal(static_cast<std::size_t>(hkv * l * d), 22);
  auto v = random_normal(static_cast<std::size_t>(hkv * l * d), 23);
  for (Context* c : {&dev, &cpu}) {
    Tensor Q = upload_as(*c, q, DType::f32, {1, hq, l, d});
    Tensor K = upload_as(*c, k, DType::f32, {1, hkv, l, d});
    Tensor V = upload_as(*c, v, DType::f32, {1, hkv, l, d});
    AttentionOptions o;
    o.causal = true;
    o.masks.window_left = 49;  // keys qp - 49 .. qp: A-shape n_local = 50, n_init 0
    const auto win = attention(*c, Q, K, V, o);
    AttentionOptions plain;
    plain.causal = true;
    const auto ash = attention(*c, Q, K, V, AShape{0, 50, true}, plain);
    EXPECT_EQ(compare_bits(download_f32(ash.out), download_f32(win.out)), "") << "window";
    // decode of the last 3 rows over a paged cache (page 16) with all hooks
    Hooked keep;
    AttentionOptions h = hooked_options(*c, 1, hq, l, true, keep);
    const auto pre = attention(*c, Q, K, V, h);
    std::vector<std::vector<float>> kk{k}, vv{v};
    const PagedHost ph = make_paged(kk, vv, {static_cast<std::int32_t>(l)}, hkv, d, 16, true, 5);
    const PagedKV kv = upload_paged(*c, ph, DType::f32);
    const int nq = 3;
    std::vector<float> qd;
    for (int hh = 0; hh < hq; ++hh)
      qd.insert(qd.end(), q.begin() + (hh * l + l - nq) * d, q.begin() + (hh * l + l) * d);
    const auto dec = attention_paged(*c, upload_as(*c, qd, DType::f32, {1, hq, nq, d}), kv, h);
    const auto po = download_f32(pre.out), dn = download_f32(dec.out);
    std::vector<float> want;
    for (int hh = 0; hh < hq; ++hh)
      want.insert(want.end(), po.begin() + (hh * l + l - nq) * d, po.begin() + (hh * l + l) * d);
    EXPECT_EQ(compare_bits(dn, want), "") << "decode vs prefill";
  }
}

TEST(AttentionMasks, HostileOptionsRefused) {
  Context cpu = fallback_context();
  Tensor Q = upload_as(cpu, random_normal(64, 1), DType::f32, {1, 1, 1, 64});
  auto bad = [&](auto set) {
    AttentionOptions o;
    set(o);
    EXPECT_THROW(attention(cpu, Q, Q, Q, o), Error);
  };
  bad([](AttentionOptions& o) { o.masks.window_left = -2; });
  bad([](AttentionOptions& o) { o.masks.softcap = NAN; });
  bad([](AttentionOptions& o) { o.masks.softcap = -1.0f; });
  bad([&](AttentionOptions& o) {
    o.masks.sinks = cpu.upload(std::vector<float>{NAN}, DType::f32, {1});
  });
  bad([&](AttentionOptions& o) {
    o.masks.alibi_slopes = cpu.upload(std::vector<float>{-1.0f}, DType::f32, {1});
  });
  bad([&](AttentionOptions& o) {
    o.masks.alibi_slopes = cpu.upload(std::vector<float>{1.0f, 1.0f}, DType::f32, {2});
  });
  bad([&](AttentionOptions& o) {
    o.masks.key_padding = cpu.upload(std::vector<std::uint8_t>{1, 1}, DType::u8, {1, 2});
  });
  bad([](AttentionOptions& o) {
    o.masks.window_left = 3;
    o.precision = Precision::int8;
  });
}

// Fallback vs a float64 reference of the hooks written from the formulas (natural units:
// softcap * tanh(scale q.k / softcap) - slope |qp - kp|, window, padding, exp(sink) in the
// denominator). Tolerance: |O - ref| <= 2e-5 (fp32 chains of 100 keys, D = 64).
TEST(AttentionMasks, FallbackMatchesFloat64Reference) {
  Context cpu = fallback_context();
  const int b = 2, hq = 4, hkv = 2, d = 64;
  const std::int64_t lq = 70, lk = 100;
  auto q = random_normal(static_cast<std::size_t>(b * hq * lq * d), 31, 2.0f);
  auto k = random_normal(static_cast<std::size_t>(b * hkv * lk * d), 32, 2.0f);
  auto v = random_normal(static_cast<std::size_t>(b * hkv * lk * d), 33);
  Hooked keep;
  AttentionOptions o = hooked_options(cpu, b, hq, lk, true, keep);
  const auto r = attention(cpu, upload_as(cpu, q, DType::f32, {b, hq, lq, d}),
                           upload_as(cpu, k, DType::f32, {b, hkv, lk, d}),
                           upload_as(cpu, v, DType::f32, {b, hkv, lk, d}), o);
  const auto out = download_f32(r.out);
  const auto sl = o.masks.alibi_slopes.download<float>(), sk = o.masks.sinks.download<float>();
  const auto pad = o.masks.key_padding.download<std::uint8_t>();
  const double scale = 1.0 / std::sqrt(64.0), cap = o.masks.softcap;
  double worst = 0;
  for (int bb = 0; bb < b; ++bb)
    for (int h = 0; h < hq; ++h)
      for (std::int64_t i = 0; i < lq; ++i) {
        const std::int64_t qp = i + lk - lq;
        const int hk = h / (hq / hkv);
        std::vector<double> w(static_cast<std::size_t>(lk), 0.0);
        double mx = sk[h];
        for (std::int64_t j = 0; j < lk; ++j) {
          if (j > qp || j < qp - o.masks.window_left || !pad[bb * lk + j]) {
            w[j] = -INFINITY;
            continue;
          }
          double s = 0;
          for (int e = 0; e < d; ++e)
            s +=
                double{q[((bb * hq + h) * lq + i) * d + e]} * k[((bb * hkv + hk) * lk + j) * d + e];
          s = cap * std::tanh(scale * s / cap) - sl[h] * std::fabs(double(qp - j));
          w[j] = s;
          mx = std::max(mx, s);
        }
        double den = std::exp(sk[h] - mx);
        for (auto& x : w) den += (x = std::exp(x - mx));
        for (int e = 0; e < d; ++e) {
          double acc = 0;
          for (std::int64_t j = 0; j < lk; ++j) acc += w[j] * v[((bb * hkv + hk) * lk + j) * d + e];
          worst = std::max(worst, std::fabs(acc / den - out[((bb * hq + h) * lq + i) * d + e]));
        }
      }
  EXPECT_LE(worst, 2e-5);
}

// Split decode (two 4096-key chunks, merge.cl merges the sink) == fallback == prefill row.
TEST(AttentionMasks, SplitDecodeSink) {
  Context dev = device_context(), cpu = fallback_context();
  const int d = 64;
  const std::int64_t l = 4200;
  auto q = random_normal(static_cast<std::size_t>(d), 41);
  auto k = random_normal(static_cast<std::size_t>(l * d), 42);
  auto v = random_normal(static_cast<std::size_t>(l * d), 43);
  std::vector<std::vector<float>> outs;
  for (Context* c : {&dev, &cpu}) {
    Hooked keep;
    AttentionOptions h = hooked_options(*c, 1, 1, l, true, keep);
    h.masks.window_left = 4150;
    const PagedHost ph = make_paged({k}, {v}, {static_cast<std::int32_t>(l)}, 1, d, 64, true, 7);
    const auto r = attention_paged(*c, upload_as(*c, q, DType::f32, {1, 1, 1, d}),
                                   upload_paged(*c, ph, DType::f32), h);
    outs.push_back(download_f32(r.out));
    outs.push_back(r.lse.download<float>());
  }
  EXPECT_EQ(compare_bits(outs[0], outs[2]), "");
  EXPECT_EQ(compare_bits(outs[1], outs[3]), "");
}

}  // namespace
}  // namespace sparq::test::attn
