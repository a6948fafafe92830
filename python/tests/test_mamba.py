# Mamba: scan and conv1d against float64 numpy references, device == fallback, and decode steps
# (numpy states updated in place) == one prefill, bit for bit.
import numpy as np
import pytest

import sparq
from conftest import rng, same_bits

sm = sparq.mamba


def scan_reference(u, delta, A, B, C, D, z, delta_bias):
    bias = delta_bias
    u, delta, A, B, C, D, z, bias = (x.astype(np.float64) for x in (u, delta, A, B, C, D, z, bias))
    dt = np.log1p(np.exp(delta + bias[None, :, None]))  # softplus
    Bt, Dm, L = u.shape
    h = np.zeros((Bt, Dm, A.shape[1]))
    y = np.zeros_like(u)
    for t in range(L):
        h = np.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        y[:, :, t] = (h * C[:, None, :, t]).sum(-1)
    out = y + D[None, :, None] * u
    return out * z / (1 + np.exp(-z)), h


def inputs(seed, Bt=2, Dm=8, N=4, L=12):
    g = rng(seed)
    f = lambda *s: g.standard_normal(s).astype(np.float32)
    return dict(u=f(Bt, Dm, L), delta=f(Bt, Dm, L), A=-np.abs(f(Dm, N)) - 0.1, B=f(Bt, N, L),
                C=f(Bt, N, L), D=f(Dm), z=f(Bt, Dm, L), delta_bias=f(Dm) * 0.5)


def test_selective_scan_reference_and_device(dev, cpu):
    a = inputs(30)
    out, last = sm.selective_scan(cpu, **a, delta_softplus=True, return_last_state=True)
    ref_out, ref_h = scan_reference(**a)
    np.testing.assert_allclose(np.asarray(out), ref_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(last), ref_h, rtol=1e-4, atol=1e-5)
    out_dev, last_dev = sm.selective_scan(dev, **a, delta_softplus=True, return_last_state=True)
    assert same_bits(out_dev, out) and same_bits(last_dev, last)


def test_decode_steps_equal_scan(cpu):
    a = inputs(31)
    full = np.asarray(sm.selective_scan(cpu, **a, delta_softplus=True))
    L0 = 9
    pre = {k: (v[..., :L0].copy() if v.ndim == 3 else v) for k, v in a.items()}
    _, state = sm.selective_scan(cpu, **pre, delta_softplus=True, return_last_state=True)
    state = state.numpy()  # a numpy state, updated in place by each step
    for t in range(L0, a["u"].shape[-1]):
        y = sm.selective_state_update(cpu, state, a["u"][..., t].copy(), a["delta"][..., t].copy(),
                                      a["A"], a["B"][..., t].copy(), a["C"][..., t].copy(),
                                      a["D"], a["z"][..., t].copy(), a["delta_bias"],
                                      dt_softplus=True)
        assert same_bits(np.asarray(y), full[..., t])


def test_causal_conv1d_reference_device_and_update(dev, cpu):
    g = rng(32)
    Bt, Dm, L, W = 2, 6, 10, 4
    x = g.standard_normal((Bt, Dm, L)).astype(np.float32)
    w = g.standard_normal((Dm, W)).astype(np.float32)
    b = g.standard_normal(Dm).astype(np.float32)
    out, fin = sm.causal_conv1d(cpu, x, w, b, silu=True, return_final_states=True)
    xp = np.concatenate([np.zeros((Bt, Dm, W - 1)), x.astype(np.float64)], axis=-1)
    pre = b[None, :, None] + sum(w[None, :, k, None] * xp[..., k:k + L] for k in range(W))
    np.testing.assert_allclose(np.asarray(out), pre / (1 + np.exp(-pre)), rtol=1e-5, atol=1e-6)
    assert same_bits(fin, x[..., -(W - 1):])
    assert same_bits(sm.causal_conv1d(dev, x, w, b, silu=True), out)
    # Decode: conv_state (numpy, in place) continues the sequence.
    state = fin.numpy()
    x_new = g.standard_normal((Bt, Dm)).astype(np.float32)
    y = sm.causal_conv1d_update(cpu, x_new, state, w, b, silu=True)
    longer = np.asarray(sm.causal_conv1d(cpu, np.concatenate([x, x_new[..., None]], -1), w, b,
                                         silu=True))
    assert same_bits(np.asarray(y), longer[..., -1])
    assert same_bits(state, np.concatenate([x, x_new[..., None]], -1)[..., -(W - 1):])
    with pytest.raises(sparq.Error, match="updated in place"):
        sm.causal_conv1d_update(cpu, x_new, state[..., ::-1], w, b)


def test_outlier_quantize(dev, cpu):
    g = rng(33)
    x = g.standard_normal((1, 4, 64)).astype(np.float32)
    x[0, :, 5] = 40.0  # an outlier channel
    q = sm.outlier_quantize(cpu, x, bits=sm.InlierBits.Int8, max_outliers=4)
    assert np.all(q.outlier_count.numpy() >= 1)
    assert np.all(q.outlier_idx.numpy()[..., 0] == 5)
    deq = sm.dequantize(cpu, q).numpy()
    assert np.all(deq[0, :, 5] == 40.0)
    step = np.asarray(q.scales)[..., None]
    assert np.all(np.abs(deq - x) <= step / 2 + 1e-6)
    qd = sm.outlier_quantize(dev, x, bits=sm.InlierBits.Int8, max_outliers=4)
    for name in ("codes", "scales", "outlier_count", "outlier_idx", "outlier_val"):
        assert same_bits(getattr(qd, name), getattr(q, name)), name
