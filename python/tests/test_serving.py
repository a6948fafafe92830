# Serving-side APIs from Python: mask keywords (device == fallback, float64 reference), the paged
# KV cache (make_paged_kv + kv_append + attention_paged over f32 and int8 pages equals the prefill
# rows bit for bit), the MMInference Grid pattern and sparse x int8.
import numpy as np
import pytest

import sparq
from conftest import rng, same_bits


def masked_reference(q, k, v, window_left, softcap, alibi, sinks, key_padding):
    """float64 causal attention with a left window, soft-cap, ALiBi, sinks and key padding."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    s = np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(D)
    s = softcap * np.tanh(s / softcap)
    qp = np.arange(Lq)[:, None] + (Lk - Lq)
    kp = np.arange(Lk)[None, :]
    s = s - alibi.astype(np.float64)[None, :, None, None] * np.abs(qp - kp)
    visible = (kp <= qp) & (kp >= qp - window_left)
    visible = visible[None, None] & (key_padding[:, None, None, :] != 0)
    s = np.where(visible, s, -np.inf)
    m = np.maximum(s.max(-1, keepdims=True), sinks.astype(np.float64)[None, :, None, None])
    p = np.exp(s - m)
    denom = p.sum(-1, keepdims=True) + np.exp(sinks.astype(np.float64)[None, :, None, None] - m)
    return np.einsum("bhqk,bhkd->bhqd", p / denom, v)


def test_mask_keywords_device_fallback_and_reference(dev, cpu):
    g = rng(50)
    B, H, L, D = 2, 2, 70, 64
    q, k, v = (g.standard_normal((B, H, L, D)).astype(np.float32) for _ in range(3))
    alibi = np.array([0.05, 0.2], np.float32)
    sinks = np.array([0.5, -1.0], np.float32)
    pad = np.ones((B, L), np.bool_)
    pad[1, :9] = False  # left padding of the second sequence
    kw = dict(causal=True, window_left=20, softcap=5.0, alibi_slopes=alibi, sinks=sinks,
              key_padding=pad)
    o_dev = sparq.attention(dev, q, k, v, **kw)
    o_cpu = sparq.attention(cpu, q, k, v, **kw)
    assert same_bits(o_dev, o_cpu)
    ref = masked_reference(q, k, v, 20, 5.0, alibi, sinks, pad)
    np.testing.assert_allclose(np.asarray(o_cpu)[0], ref[0], rtol=1e-4, atol=3e-6)
    # sequence 1's first 9 rows see only padding keys (no visible key: sparq gives 0 there)
    np.testing.assert_allclose(np.asarray(o_cpu)[1, :, 9:], ref[1, :, 9:], rtol=1e-4, atol=3e-6)
    assert not np.asarray(o_cpu)[1, :, :9].any()


def int8_row_roundtrip(x):
    """kv_append's int8 rows in numpy float32: scale = absmax / 127, code = clamp(trunc(y +- 0.5),
    -127, 127) with y = x / scale (each step one float32 rounding), value = fp32(code * scale)."""
    x = x.astype(np.float32)
    scale = np.abs(x).max(-1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(scale == 0, np.float32(0), x / scale).astype(np.float32)
    t = (y + np.where(y >= 0, np.float32(0.5), np.float32(-0.5))).astype(np.float32)
    code = np.clip(t, -127, 127).astype(np.int32)
    return (code.astype(np.float32) * scale).astype(np.float32)


@pytest.mark.parametrize("storage", [sparq.f32, sparq.i8])
def test_kv_append_then_decode_equals_prefill_rows(dev, storage):
    g = rng(51)
    B, Hq, Hkv, D, L, page = 2, 4, 2, 64, 40, 16
    pages_per_seq = (L + page - 1) // page
    table = np.arange(B * pages_per_seq, dtype=np.int32)[::-1].reshape(B, pages_per_seq).copy()
    kv = sparq.make_paged_kv(dev, B * pages_per_seq, page, Hkv, D, storage=storage,
                             page_table=table, seq_lens=np.zeros(B, np.int32))
    k = g.standard_normal((B, Hkv, L, D)).astype(np.float32)
    v = g.standard_normal((B, Hkv, L, D)).astype(np.float32)
    q = g.standard_normal((B, Hq, L, D)).astype(np.float32)
    sparq.kv_append(dev, kv, k[:, :, :25], v[:, :, :25])  # a prompt chunk, then one token
    sparq.kv_append(dev, kv, k[:, :, 25:26], v[:, :, 25:26])
    assert np.array_equal(kv.seq_lens.numpy(), [26, 26])
    out = sparq.attention_paged(dev, q[:, :, 25], kv, causal=True)
    kd, vd = k[:, :, :26], v[:, :, :26]
    if storage == sparq.i8:  # int8 pages mean fp32(code * scale) per row (specs §5 codec)
        kd, vd = int8_row_roundtrip(kd), int8_row_roundtrip(vd)
    want = sparq.attention(dev, q[:, :, 25:26], kd, vd, causal=True)
    assert same_bits(np.asarray(out), np.asarray(want)[:, :, 0])


def test_int8_pages_as_arrays_equal_dequantized_f32(dev):
    g = rng(52)
    P, page, Hkv, D = 3, 16, 2, 64
    codes = g.integers(-127, 128, size=(P, page, Hkv, D), dtype=np.int8)
    scales = (0.01 + g.random((P, page, Hkv))).astype(np.float32)
    table = np.array([[2, 0, 1]], np.int32)
    lens = np.array([40], np.int32)
    q = g.standard_normal((1, 4, D)).astype(np.float32)
    o8 = sparq.attention_paged(dev, q, codes, codes, table, lens, k_scales=scales, v_scales=scales)
    deq = (codes.astype(np.float32) * scales[..., None]).astype(np.float32)
    o32 = sparq.attention_paged(dev, q, deq, deq, table, lens)
    assert same_bits(o8, o32)


def test_grid_pattern_device_equals_fallback(dev, cpu):
    g = rng(53)
    q, k, v = (g.standard_normal((1, 2, 256, 64)).astype(np.float32) for _ in range(3))
    grid = sparq.Grid(stride=16, top_k=2, lines=2)
    o_dev = sparq.sparse_attention(dev, q, k, v, grid)
    o_cpu = sparq.sparse_attention(cpu, q, k, v, grid)
    assert same_bits(o_dev, o_cpu)
    with pytest.raises(sparq.Error):
        sparq.Grid(boundary="diagonal")


def test_sparse_int8_and_masks_refused_with_quantized(dev, cpu):
    g = rng(54)
    q, k, v = (g.standard_normal((1, 2, 130, 64)).astype(np.float32) for _ in range(3))
    pattern = sparq.AShape(16, 64, exact=True)
    o_dev = sparq.sparse_attention(dev, q, k, v, pattern, precision="nvfp4")
    o_cpu = sparq.sparse_attention(cpu, q, k, v, pattern, precision="nvfp4")
    assert same_bits(o_dev, o_cpu)
    with pytest.raises(sparq.Error):
        sparq.sparse_attention(cpu, q, k, v, pattern, precision="nvfp4", softcap=5.0)
