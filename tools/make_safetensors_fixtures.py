#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""safetensors interop fixtures for tests/io/test_safetensors_interop.cpp, both directions.

  python3 tools/make_safetensors_fixtures.py write
      Writes, with Python's `safetensors` + torch, into tests/fixtures/safetensors/:
        python_dtypes.safetensors    one tensor per dtype gkd reads (F32, F64, F16, BF16, I64, I32,
                                     U8, BOOL, ...) with special values, and metadata;
        python_expected.safetensors  the same tensors converted to float64 (exact), for comparison;
        python_state_dict.safetensors  a torch.nn state_dict (Conv2d + BatchNorm2d, including the
                                     I64 `num_batches_tracked`) as PyTorch users exchange weights.
  python3 tools/make_safetensors_fixtures.py verify [FILE...]
      Loads gkd-written files (default: the committed tests/fixtures/safetensors/gkd_written_*.safetensors)
      with `safetensors.torch.load_file` and checks dtype, shape, values and metadata against the
      formulas of the C++ test that wrote them (tests/io/test_safetensors_interop.cpp, case
      "gkd-written fixtures"). Exit status 0 when everything matches.

Needs: pip install safetensors torch (tools/deps/pip-io.txt).
"""
import math
import pathlib
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "safetensors"


def dtype_tensors():
    f = [1.0, -0.0, 0.1, -2.5, 65504.0, 2.0**-24, math.inf, -math.inf, 3.0e38, 1.0e-40]
    return {
        "f32": torch.tensor(f, dtype=torch.float32).reshape(2, 5),
        "f64": torch.tensor([math.pi, -1e300, 5e-324, 0.0], dtype=torch.float64),
        "f16": torch.tensor(f[:8] + [1.0e-3, 0.333], dtype=torch.float16).reshape(5, 2),
        "bf16": torch.tensor([1.0, -3.25, 1.0e30, 1.0e-30, 0.3], dtype=torch.bfloat16),
        "i64": torch.tensor([[-5, 0], [2**53, -(2**40)]], dtype=torch.int64),
        "i32": torch.tensor([2**31 - 1, -(2**31), 7], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "u8": torch.arange(0, 256, 51, dtype=torch.uint8),
        "bool": torch.tensor([[True, False, True]]),
        "scalar": torch.tensor(4.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t().contiguous(),
    }


def write():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    tensors = dtype_tensors()
    meta = {"producer": "python-safetensors", "format": "pt", "note": "uni\u00e7ode \"quoted\""}
    save_file(tensors, str(FIXTURES / "python_dtypes.safetensors"), metadata=meta)
    save_file({k: v.to(torch.float64) for k, v in tensors.items()}, str(FIXTURES / "python_expected.safetensors"))

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    model(torch.randn(2, 1, 6, 6))  # training step: running statistics move, num_batches_tracked = 1
    save_file(dict(model.state_dict()), str(FIXTURES / "python_state_dict.safetensors"), metadata={"format": "pt"})
    for p in sorted(FIXTURES.glob("python_*.safetensors")):
        print(f"wrote {p} ({p.stat().st_size} bytes)")


# The formulas of the C++ test case "gkd-written fixtures".
def expected_gkd(dtype):
    def ramp(n, scale, shift):
        return torch.tensor([i * scale + shift for i in range(n)], dtype=dtype)

    return {
        "conv.weight": ramp(18, 0.25, -2.0).reshape(2, 1, 3, 3),
        "bn.running_mean": ramp(2, 0.5, 0.125),
        "fc.weight": ramp(6, 1.0, 0.0).reshape(2, 3).t(),  # gkd wrote a transposed (strided) view
        "scale": torch.tensor(-1.5, dtype=dtype),
        "empty": torch.zeros(0, 3, dtype=dtype),
    }


def verify(paths):
    failures = 0
    for path in paths:
        dtype = torch.float64 if "f64" in path.name else torch.float32
        loaded = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        expected = expected_gkd(dtype)
        problems = []
        if list(loaded) and set(loaded) != set(expected):
            problems.append(f"keys {sorted(loaded)} != {sorted(expected)}")
        for k, e in expected.items():
            t = loaded.get(k)
            if t is None:
                problems.append(f"missing {k}")
            elif t.dtype != dtype or t.shape != e.shape or not torch.equal(t, e):
                problems.append(f"{k}: got {t.dtype} {tuple(t.shape)} {t.flatten()[:6].tolist()}")
        if meta != {"producer": "gkd", "epoch": "3"}:
            problems.append(f"metadata {meta}")
        print(f"{path}: {'OK' if not problems else 'FAILED: ' + '; '.join(problems)}")
        failures += bool(problems)
    return failures


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "write"
    if mode == "write":
        write()
    elif mode == "verify":
        paths = [pathlib.Path(p) for p in sys.argv[2:]] or sorted(FIXTURES.glob("gkd_written_*.safetensors"))
        if not paths:
            sys.exit("no gkd-written files to verify")
        sys.exit(1 if verify(paths) else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
