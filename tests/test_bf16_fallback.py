"""bf16 autocast is used only where the device computes bfloat16 natively (sr_models.environment.native_bf16).

Without native bf16 (an AVX2-only CPU) torch emulates it and a training step is tens of times slower than in
float32, so the Trainer trains such a device in float32 and says so."""

from __future__ import annotations

import logging

import torch

from sr_models import environment, trainer
from sr_models.distributed import DistInfo


def _info() -> DistInfo:
    return DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


def _autocast_dtype(ctx) -> torch.dtype:
    with ctx.autocast():
        return (torch.ones(2, 2) @ torch.ones(2, 2)).dtype


def test_bf16_used_where_native(monkeypatch):
    monkeypatch.setattr(trainer, "native_bf16", lambda device: True)
    ctx = trainer.TrainContext(_info(), bf16=True)
    assert ctx.bf16 and _autocast_dtype(ctx) == torch.bfloat16


def test_bf16_falls_back_to_float32_without_native_support(monkeypatch, caplog):
    monkeypatch.setattr(trainer, "native_bf16", lambda device: False)
    with caplog.at_level(logging.WARNING, logger="sr_models.trainer"):
        ctx = trainer.TrainContext(_info(), bf16=True)
    assert not ctx.bf16 and _autocast_dtype(ctx) == torch.float32
    assert "no native bfloat16" in caplog.text


def test_bf16_off_stays_off(monkeypatch):
    monkeypatch.setattr(trainer, "native_bf16", lambda device: True)
    assert _autocast_dtype(trainer.TrainContext(_info(), bf16=False)) == torch.float32


def test_native_bf16_on_cpu_follows_the_instruction_probes(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert environment.native_bf16("cpu") is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert environment.native_bf16("cpu") is True
    assert "native_bf16" in environment.environment_record("cpu")
