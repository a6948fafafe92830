# Sparse attention from Python: every pattern class builds an index and runs device == fallback
# bit for bit; the dense index equals dense attention; a .sqidx round trip; bad patterns raise.
import numpy as np
import pytest

import sparq
from conftest import rng, same_bits


def qkv(L=200, Hq=4, Hkv=2, D=64, seed=30):
    g = rng(seed)
    return (g.standard_normal((1, Hq, L, D)).astype(np.float32),
            g.standard_normal((1, Hkv, L, D)).astype(np.float32),
            g.standard_normal((1, Hkv, L, D)).astype(np.float32))


# (BlockSparse and plain AShape are covered by the C++ tests; CI time.)
@pytest.mark.parametrize("pattern", [sparq.AShape(16, 64, exact=True), sparq.VerticalSlash(40, 60),
                                     sparq.XAttention(8, 0.9)])
def test_patterns_device_equals_fallback(dev, cpu, pattern):
    q, k, v = qkv(L=256)
    o_dev = sparq.sparse_attention(dev, q, k, v, pattern)
    o_cpu = sparq.sparse_attention(cpu, q, k, v, pattern)
    assert same_bits(o_dev, o_cpu)
    idx = sparq.build_index(cpu, q, k, pattern)
    arrays = idx.arrays()
    assert arrays["tile_count"].shape == idx.shape[:3]
    assert 0 < idx.density() <= 1


def test_dense_index_equals_dense_attention(dev, tmp_path):
    q, k, v = qkv(L=130)
    idx = sparq.dense_index(dev, 1, 4, 130, 130)
    assert idx.density() == 1.0
    assert same_bits(sparq.sparse_attention(dev, q, k, v, idx),
                     sparq.attention(dev, q, k, v, causal=True))
    idx.save(str(tmp_path / "i.sqidx"))
    again = sparq.load_index(dev, str(tmp_path / "i.sqidx"))
    for name, a in idx.arrays().items():
        assert np.array_equal(a, again.arrays()[name]), name


def test_bad_pattern_raises(cpu):
    q, k, v = qkv(L=64)
    with pytest.raises(sparq.Error):
        sparq.sparse_attention(cpu, q, k, v, "not a pattern")
    with pytest.raises(sparq.Error):
        sparq.build_index(cpu, q, k, sparq.BlockSparse(-1))
