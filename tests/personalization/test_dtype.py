"""Choosing the compute dtype: bfloat16 only where the device has it natively.

On an AVX2-only CPU PyTorch emulates bfloat16; a toy-model training step took ~45 s there against
~1.4 s in float32, which made the CPU demo and the test suite crawl when ``auto`` meant bfloat16.
"""

import logging
from pathlib import Path

import pytest
import torch

from personalization import modeling
from personalization.cli import pick_dtype
from personalization.errors import PersonalizationError

CPU = torch.device("cpu")


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_dtype_follows_native_bfloat16(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: torch.dtype
) -> None:
    monkeypatch.setattr(modeling, "native_bfloat16", lambda device: native)
    assert pick_dtype("auto", CPU) is expected


def test_explicit_dtypes_are_kept_and_emulated_bf16_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(modeling, "native_bfloat16", lambda device: False)
    assert pick_dtype("fp32", CPU) is torch.float32
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        assert pick_dtype("bf16", CPU) is torch.bfloat16
    assert "emulated" in caplog.text


def test_fp16_on_cpu_is_refused() -> None:
    with pytest.raises(PersonalizationError, match="fp16"):
        pick_dtype("fp16", CPU)


def test_native_bfloat16_agrees_with_this_cpu() -> None:
    flags = modeling.cpu_flags()
    if flags is None:
        expected = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    else:
        expected = bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    assert modeling.native_bfloat16(CPU) is expected
    assert modeling.preferred_dtype(CPU) is (torch.bfloat16 if expected else torch.float32)


@pytest.mark.parametrize(
    ("line", "native"),
    [
        # An AVX-512 Xeon without AVX-512 BF16: oneDNN says bfloat16 is supported, but it is
        # emulated there and ~3x slower than float32 (benchmarks/dtype_speed.py).
        ("flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512vl fma", False),
        ("flags\t\t: fpu avx2 avx512f avx512_bf16 fma", True),
        ("flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile", True),
        ("flags\t\t: fpu sse2 avx2 fma", False),
        ("Features\t: fp asimd bf16 i8mm", True),
        ("Features\t: fp asimd", False),
    ],
)
def test_native_bfloat16_reads_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, line: str, native: bool
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\n{line}\n\nprocessor\t: 1\n")
    read = modeling.cpu_flags
    monkeypatch.setattr(modeling, "cpu_flags", lambda: read(cpuinfo))
    assert modeling.native_bfloat16(CPU) is native
    assert modeling.preferred_dtype(CPU) is (torch.bfloat16 if native else torch.float32)


def test_cpu_flags_are_unknown_without_cpuinfo(tmp_path: Path) -> None:
    assert modeling.cpu_flags(tmp_path / "missing") is None
    (tmp_path / "empty").write_text("processor\t: 0\n")
    assert modeling.cpu_flags(tmp_path / "empty") is None


@pytest.mark.parametrize("native", [True, False])
def test_cpu_autocast_is_bfloat16_only_where_native(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(modeling, "native_bfloat16", lambda device: native)
    layer = torch.nn.Linear(4, 4)
    with modeling.cpu_autocast():
        out = layer(torch.ones(1, 4))
    assert out.dtype is (torch.bfloat16 if native else torch.float32)
