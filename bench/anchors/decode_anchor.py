#!/usr/bin/env python3
"""Times PyTorch's scaled_dot_product_attention on decode shapes (one query row per sequence
against a long contiguous KV cache, GQA), as the anchor of sparq's attention_paged decode.

usage: python3 decode_anchor.py [--batches 1,8,32] [--ctx 32768,131072] [--hq 32] [--hkv 8]
                                [--dim 128] [--dtype bf16|fp32] [--json out.json]
Each row: median ms over timed repeats (CUDA events, after warm-up), and GB/s of K and V read
(2 * B * Hkv * ctx * D * element size). Shapes whose K/V would not fit in 60 GB are skipped.
"""
import argparse, json, torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--batches", default="1,8,32")
ap.add_argument("--ctx", default="32768,131072")
ap.add_argument("--hq", type=int, default=32)
ap.add_argument("--hkv", type=int, default=8)
ap.add_argument("--dim", type=int, default=128)
ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
ap.add_argument("--json", default=None)
a = ap.parse_args()
dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
esize = torch.tensor([], dtype=dt).element_size()


def median_ms(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


rows = []
print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}")
for B in [int(x) for x in a.batches.split(",")]:
    for L in [int(x) for x in a.ctx.split(",")]:
        kv_bytes = 2 * B * a.hkv * L * a.dim * esize
        if kv_bytes > 60e9:
            print(f"B={B} ctx={L}: skipped ({kv_bytes / 1e9:.1f} GB of K/V)")
            continue
        q = torch.randn(B, a.hq, 1, a.dim, device="cuda", dtype=dt)
        k = torch.randn(B, a.hkv, L, a.dim, device="cuda", dtype=dt)
        v = torch.randn_like(k)
        ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
        rows.append(dict(op="decode", B=B, ctx=L, Hq=a.hq, Hkv=a.hkv, D=a.dim, dtype=a.dtype, ms=ms,
                         gbps=kv_bytes / ms / 1e6))
        print(f"B={B:>3} ctx={L:>7} {a.dtype} {ms:9.4f} ms {kv_bytes / ms / 1e6:8.1f} GB/s of K/V")
        del q, k, v
        torch.cuda.empty_cache()
if a.json:
    with open(a.json, "w") as f:
        json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, rows=rows), f,
                  indent=1)
