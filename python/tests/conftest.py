# Fixtures of the sparq Python tests: `dev` is the device the C++ suite compares with the fallback
# ($SPARQ_TEST_DEVICE, default "pocl"), `cpu` the bit-exact C++ fallback.
import os

import numpy as np
import pytest

import sparq


@pytest.fixture(scope="session")
def dev():
    return sparq.Context(device=os.environ.get("SPARQ_TEST_DEVICE") or "pocl")


@pytest.fixture(scope="session")
def cpu():
    return sparq.Context(device="fallback")


def same_bits(a, b):
    """Bitwise equality with sparq's rule: any NaN equals any NaN, signed zeros must match."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f":
        return np.array_equal(a, b)
    nan = np.isnan(a) & np.isnan(b)
    view = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return bool(np.all(nan | (a.view(view) == b.view(view))))


def rng(seed):
    return np.random.default_rng(seed)
