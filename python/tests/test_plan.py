# sparq.Plan from Python: make_attention_plan (fp32 on the device and the fallback, int8),
# make_attention_paged_plan with host tables, make_attention_varlen_plan with host offsets and
# make_sparse_attention_plan; each run equals the one-shot op bit for bit, mismatched runs raise.
import numpy as np
import pytest

sparq = pytest.importorskip("sparq", reason="the sparq Python module is not built")
from conftest import rng, same_bits  # noqa: E402


def qkv(g, Lq, Lk, Hq=4, Hkv=2, D=64):
    return (g.standard_normal((1, Hq, Lq, D)).astype(np.float32),
            g.standard_normal((1, Hkv, Lk, D)).astype(np.float32),
            g.standard_normal((1, Hkv, Lk, D)).astype(np.float32))


def test_dense_and_int8_plans(dev, cpu):
    g = rng(90)
    for ctx, precision in ((dev, "fp32"), (cpu, "fp32"), (cpu, "int8")):
        plan = sparq.make_attention_plan(ctx, *qkv(g, 5, 70), causal=True, precision=precision,
                                         return_lse=precision == "fp32")
        assert plan.out_shape == (1, 4, 5, 64)
        out = ctx.empty(plan.out_dtype, list(plan.out_shape))
        for run in range(2):
            q, k, v = (ctx.upload(x) for x in qkv(g, 5, 70))
            got = plan.run(q, k, v, out=out if run else None)
            want = sparq.attention(ctx, q, k, v, causal=True, precision=precision,
                                   return_lse=precision == "fp32")
            if precision == "fp32":
                assert same_bits(got[0], want[0]) and same_bits(got[1], want[1])
            else:
                assert same_bits(got, want)
    # int8: the quantized Q/K/V, scales, means and delta live in the workspace (a caller's here;
    # the fallback checks it and keeps its own temporaries).
    assert plan.workspace_bytes > 0
    ws = cpu.empty(sparq.u8, [plan.workspace_bytes])
    assert same_bits(plan.run(q, k, v, workspace=ws), want)
    with pytest.raises(sparq.Error, match="buffers.workspace"):
        plan.run(q, k, v, workspace=cpu.empty(sparq.u8, [plan.workspace_bytes - 1]))
    with pytest.raises(sparq.Error) as e:
        plan.run(*qkv(g, 6, 70))
    assert e.value.code == "shape_mismatch"
    with pytest.raises(sparq.Error, match="run_sparse"):
        sparq.make_sparse_attention_plan(cpu, *qkv(g, 64, 64),
                                         sparq.dense_index(cpu, 1, 4, 64, 64),
                                         causal=True).run(*qkv(g, 64, 64))


def test_paged_varlen_and_sparse_plans(cpu):
    g = rng(91)
    page, Hkv, D = 16, 2, 64
    kv = sparq.make_paged_kv(cpu, 6, page, Hkv, D, page_table=np.array([[4, 1, 3]], np.int32),
                             seq_lens=np.array([0], np.int32))
    sparq.kv_append(cpu, kv, *qkv(g, 40, 40, Hq=Hkv)[1:])
    q = g.standard_normal((1, 4, 64)).astype(np.float32)
    plan = sparq.make_attention_paged_plan(cpu, q, kv, causal=True)
    got = plan.run_paged(q, kv, seq_lens=np.array([40], np.int32),
                         page_table=np.array([[4, 1, 3]], np.int32))
    assert same_bits(got, sparq.attention_paged(cpu, q, kv, causal=True))

    cu_q, cu_k = np.array([0, 3, 8], np.int32), np.array([0, 30, 70], np.int32)
    q, k, v = (g.standard_normal((n, h, D)).astype(np.float32)
               for n, h in ((8, 4), (70, 2), (70, 2)))
    plan = sparq.make_attention_varlen_plan(cpu, q, k, v, cu_q, cu_k, causal=True)
    assert same_bits(plan.run_varlen(q, k, v, cu_q, cu_k),
                     sparq.attention_varlen(cpu, q, k, v, cu_q, cu_k, causal=True))

    q, k, v = qkv(g, 64, 100)
    index = sparq.build_index(cpu, q, k, sparq.AShape(16, 32))
    plan = sparq.make_sparse_attention_plan(cpu, q, k, v, index, causal=True)
    assert same_bits(plan.run_sparse(q, k, v, index), sparq.sparse_attention(cpu, q, k, v, index))
    plan = sparq.make_sparse_attention_plan(cpu, q, k, v, sparq.AShape(16, 32), causal=True)
    assert same_bits(plan.run(q, k, v), sparq.sparse_attention(cpu, q, k, v, sparq.AShape(16, 32)))


def test_packed_plans(cpu):
    g = rng(92)
    q, k, v = qkv(g, 130, 150)
    packed = sparq.sage8_quantize(cpu, q, k, v)
    assert packed.delta is not None and packed.q_codes.dtype == sparq.i8
    plan = sparq.make_sage8_packed_plan(cpu, packed, causal=True)
    q, k, v = qkv(g, 130, 150)
    packed = sparq.sage8_quantize(cpu, q, k, v)
    want = sparq.attention(cpu, q, k, v, causal=True, precision="int8")
    assert same_bits(plan.run_sage8(packed), want)
    assert same_bits(sparq.sage8_attention_packed(cpu, packed, causal=True), want)

    def fp4(seed):
        q, k, v = qkv(rng(seed), 70, 100)
        return (sparq.fp4_quantize_rows(cpu, q), sparq.fp4_quantize_rows(cpu, k),
                sparq.fp4_quantize_tokens(cpu, v))
    plan = sparq.make_fp4_packed_plan(cpu, *fp4(93), causal=True)
    args = fp4(94)
    assert same_bits(plan.run_fp4(*args), sparq.fp4_attention_packed(cpu, *args, causal=True))
    with pytest.raises(sparq.Error, match="make_fp4_packed_plan"):
        plan.run_sage8(packed)
