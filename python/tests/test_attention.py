# Attention ops: device == fallback bit for bit, fallback vs a float64 numpy reference, and the
# "same token, same bits" promises (varlen == dense, paged decode == prefill row).
import numpy as np
import pytest

import sparq
from conftest import rng, same_bits


def reference(q, k, v, causal, scale=None):
    """float64 attention with GQA and bottom-right causal alignment; lse in base 2."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    B, Hq, Lq, D = q.shape
    rep = Hq // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = np.einsum("bhqd,bhkd->bhqk", q, k) * (scale or 1 / np.sqrt(D))
    if causal:
        Lk = k.shape[2]
        mask = np.arange(Lk)[None, :] > np.arange(Lq)[:, None] + (Lk - Lq)
        s = np.where(mask, -np.inf, s)
    m = s.max(-1, keepdims=True)
    p = np.exp(s - m)
    out = np.einsum("bhqk,bhkd->bhqd", p / p.sum(-1, keepdims=True), v)
    return out, (m[..., 0] + np.log(p.sum(-1))) / np.log(2)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_fallback_and_reference(dev, cpu, causal):
    g = rng(10)
    q = g.standard_normal((1, 4, 33, 64)).astype(np.float32)
    k = g.standard_normal((1, 2, 40, 64)).astype(np.float32)
    v = g.standard_normal((1, 2, 40, 64)).astype(np.float32)
    o_dev, l_dev = sparq.attention(dev, q, k, v, causal=causal, return_lse=True)
    o_cpu, l_cpu = sparq.attention(cpu, q, k, v, causal=causal, return_lse=True)
    assert same_bits(o_dev, o_cpu) and same_bits(l_dev, l_cpu)
    o_ref, l_ref = reference(q, k, v, causal)
    np.testing.assert_allclose(np.asarray(o_cpu), o_ref, rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(np.asarray(l_cpu), l_ref, rtol=1e-6, atol=1e-5)


def test_fp16_inputs_and_bf16_output(cpu):
    g = rng(11)
    q = g.standard_normal((1, 2, 8, 32)).astype(np.float16)
    out = sparq.attention(cpu, q, q, q, out_dtype=sparq.bf16)
    assert out.dtype == sparq.bf16
    o_ref, _ = reference(q, q, q, False)
    np.testing.assert_allclose(np.asarray(out), o_ref, rtol=1e-2, atol=1e-2)


def test_varlen_equals_dense_per_sequence(cpu):
    g = rng(12)
    lens = [5, 1, 9]
    cu = np.cumsum([0] + lens).astype(np.int32)
    q = g.standard_normal((cu[-1], 4, 32)).astype(np.float32)
    k = g.standard_normal((cu[-1], 2, 32)).astype(np.float32)
    v = g.standard_normal((cu[-1], 2, 32)).astype(np.float32)
    out = np.asarray(sparq.attention_varlen(cpu, q, k, v, cu, cu, causal=True))
    for s in range(len(lens)):
        a, b = cu[s], cu[s + 1]
        dense = sparq.attention(cpu, *(x[a:b].transpose(1, 0, 2)[None] for x in (q, k, v)),
                                causal=True)
        assert same_bits(out[a:b], np.asarray(dense)[0].transpose(1, 0, 2))


def test_paged_decode_equals_prefill_row(dev):
    g = rng(13)
    B, Hkv, Hq, D, ps, L = 2, 2, 4, 64, 16, 37
    k = g.standard_normal((B, Hkv, L, D)).astype(np.float32)
    v = g.standard_normal((B, Hkv, L, D)).astype(np.float32)
    q = g.standard_normal((B, Hq, L, D)).astype(np.float32)
    prefill = np.asarray(sparq.attention(dev, q, k, v, causal=True))
    # Pages in NHD layout, sequence b's pages shuffled into a shared pool.
    npg = (L + ps - 1) // ps
    pool_k = np.zeros((B * npg, ps, Hkv, D), np.float32)
    pool_v = np.zeros_like(pool_k)
    table = g.permutation(B * npg).astype(np.int32).reshape(B, npg)
    for b in range(B):
        for j in range(L):
            pool_k[table[b, j // ps], j % ps] = k[b, :, j]
            pool_v[table[b, j // ps], j % ps] = v[b, :, j]
    seq_lens = np.full(B, L, np.int32)
    out = sparq.attention_paged(dev, q[:, :, -1], pool_k, pool_v, table, seq_lens, page_size=ps)
    assert same_bits(np.asarray(out), prefill[:, :, -1])
    bad = table.copy()
    bad[1, 0] = B * npg  # one past the pool
    with pytest.raises(sparq.Error) as e:
        sparq.attention_paged(dev, q[:, :, -1], pool_k, pool_v, bad, seq_lens, page_size=ps)
    assert e.value.code == "invalid_argument" and "page_table" in str(e.value)


def test_merge_states(dev, cpu):
    g = rng(14)
    oa, ob = (g.standard_normal((3, 4, 16)).astype(np.float32) for _ in range(2))
    la, lb = (g.standard_normal((3, 4)).astype(np.float32) * 4 for _ in range(2))
    la[0, 0] = -np.inf  # an empty side: the other is returned unchanged
    o_dev, l_dev = sparq.merge_states(dev, oa, la, ob, lb)
    o_cpu, l_cpu = sparq.merge_states(cpu, oa, la, ob, lb)
    assert same_bits(o_dev, o_cpu) and same_bits(l_dev, l_cpu)
    m = np.maximum(la, lb).astype(np.float64)
    wa, wb = np.exp2(la - m), np.exp2(lb - m)
    ref = (oa * wa[..., None] + ob * wb[..., None]) / (wa + wb)[..., None]
    np.testing.assert_allclose(np.asarray(o_cpu), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(l_cpu), m + np.log2(wa + wb), rtol=1e-6, atol=1e-6)
    assert same_bits(np.asarray(o_cpu)[0, 0], ob[0, 0])


def test_int8_precision_device_equals_fallback(dev, cpu):
    g = rng(15)
    q, k, v = (g.standard_normal((1, 2, 64, 64)).astype(np.float32) for _ in range(3))
    o_dev = np.asarray(sparq.attention(dev, q, k, v, precision="int8"))
    o_cpu = np.asarray(sparq.attention(cpu, q, k, v, precision="int8"))
    assert same_bits(o_dev, o_cpu)
    o_ref, _ = reference(q, k, v, False)
    assert np.abs(o_cpu - o_ref).max() < 0.05  # quantized: close, not exact
    with pytest.raises(sparq.Error, match="precision must be"):
        sparq.attention(cpu, q, k, v, precision="fp8")
