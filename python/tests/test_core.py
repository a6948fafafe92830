# Context, Tensor, dtypes and errors of the binding.
import numpy as np
import pytest

import sparq
from conftest import rng, same_bits


def test_version_and_devices(cpu):
    assert sparq.version() == sparq.__version__
    assert cpu.backend == "fallback" and cpu.device.backend == "fallback"
    devices = sparq.list_devices()
    assert all({"selector", "name", "usable", "reason"} <= set(d) for d in devices)
    assert any(d["usable"] for d in devices)  # PoCL at least


def test_dev_is_opencl(dev):
    assert dev.backend == "opencl"


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8, np.uint8, np.int32])
def test_upload_download_round_trip(cpu, dev, dtype):
    a = (rng(1).standard_normal((3, 5)) * 20).astype(dtype)
    for ctx in (cpu, dev):
        t = ctx.upload(a)
        assert t.shape == (3, 5) and t.size == 15
        assert same_bits(t.numpy(), a) and same_bits(np.asarray(t), a)


def test_narrowing_and_bf16(cpu):
    x = rng(2).standard_normal(7)
    assert same_bits(cpu.upload(x).numpy(), x.astype(np.float32))  # float64 rounded
    assert cpu.upload(np.arange(4)).dtype == sparq.i32  # int64 narrowed
    with pytest.raises(sparq.Error) as e:
        cpu.upload(np.array([2**40]))
    assert e.value.code == "invalid_argument" and "does not fit int32" in str(e.value)
    # bf16 from uint16 bits; downloads widen exactly to float32.
    bits = np.array([0x3F80, 0xC040, 0x0001, 0x7F80], dtype=np.uint16)
    t = cpu.upload(bits, dtype=sparq.bf16)
    assert t.dtype == sparq.bf16
    want = (bits.astype(np.uint32) << 16).view(np.float32)
    assert same_bits(t.numpy(), want)
    with pytest.raises(sparq.Error, match="not a sparq storage type"):
        cpu.upload(np.zeros(3, dtype=np.complex64))


def test_views_download_in_view_order(dev):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = dev.upload(a)
    v = t.view([2, 4, 3], [12, 1, 4])  # a transposed (last two axes) without a copy
    assert same_bits(v.numpy(), a.transpose(0, 2, 1).copy())
    with pytest.raises(sparq.Error) as e:
        t.view([2, 3, 5], [15, 5, 1])
    assert e.value.code in ("shape_mismatch", "invalid_argument")


def test_errors_carry_code_and_message(cpu):
    q = np.zeros((1, 2, 4, 8), np.float32)
    with pytest.raises(sparq.Error) as e:
        sparq.attention(cpu, q, q[..., :4], q)
    assert isinstance(e.value, RuntimeError)
    assert e.value.code == "shape_mismatch"
    assert str(e.value).startswith("attention:")
    ok, reason = sparq.supports_attention(cpu, q, q[..., :4], q)
    assert not ok and reason == str(e.value)
    with pytest.raises(sparq.Error) as e:
        sparq.Context(device="no-such-device-xyz")
    assert e.value.code == "no_device"
