"""DDP under gloo: one 2-process step equals one process accumulating the gradients of the same two
half-batches (batch-norm statistics per half, as each rank sees them)."""

from __future__ import annotations

import importlib.util
import socket

import pytest
import torch
import torch.multiprocessing as mp
from trainer_tiny import build_method, ddp_worker, make_pairs

from sr_models import checkpoint as ckpt
from sr_models import distributed as dist_utils
from sr_models.trainer import BatchSampler, make_batch

SEED = 4
HAVE_PRSR = importlib.util.find_spec("sr_models.pixel_recursive") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loss_of(kind, model, batch):
    if kind == "tiny_bn":
        return model.loss_on(batch)
    return model.loss(batch["lr"], batch["hr"])


def reference(kind, train_cfg, world=2, split=True):
    """One SGD step from the same weights on the same global batch, in one process.

    split=True: forward/backward each rank's chunk separately in train mode and average the gradients
    (what DDP computes); split=False: the whole batch at once (batch-norm statistics over all of it).
    Returns (model after the step, buffers after the first chunk's forward).
    """
    model = build_method(kind)
    model.train()
    data = make_pairs(12, seed=1)
    idx = BatchSampler(12, train_cfg["batch_size"], SEED).next()
    opt = torch.optim.SGD(model.parameters(), lr=train_cfg["lr"])
    opt.zero_grad()
    chunks = idx.chunk(world) if split else [idx]
    first_buffers = None
    for chunk in chunks:
        batch = make_batch(data.lr[chunk.numpy()], data.hr[chunk.numpy()], torch.device("cpu"))
        (loss_of(kind, model, batch) / len(chunks)).backward()
        if first_buffers is None:
            first_buffers = {k: v.clone() for k, v in model.named_buffers()}
    opt.step()
    return model, first_buffers


def train_cfg(batch_size, lr):
    return dict(
        steps=1,
        batch_size=batch_size,
        optimizer="sgd",
        lr=lr,
        bf16=False,
        grad_clip=None,
        log_every=1,
        val_every=1,
        ckpt_every=1,
        grid_every=1,
        val_images=0,
        grid_images=0,
    )


@pytest.mark.slow
def test_two_process_gloo_step_equals_accumulated_half_batches(tmp_path):
    jobs = [("tiny_bn", str(tmp_path / "tiny"), train_cfg(8, 0.5))]
    if HAVE_PRSR:
        jobs.append(("pixel_recursive", str(tmp_path / "prsr"), train_cfg(4, 0.05)))
    mp.spawn(ddp_worker, args=(2, free_port(), jobs, SEED), nprocs=2, join=True)

    for kind, run_dir, cfg in jobs:
        ddp_model = build_method(kind)
        ckpt.load_weights(ddp_model, f"{run_dir}/model.safetensors")
        want, first_buffers = reference(kind, cfg)
        whole, _ = reference(kind, cfg, split=False)
        got = dict(ddp_model.named_parameters())
        moved = False
        for name, p in want.named_parameters():
            torch.testing.assert_close(got[name], p, rtol=0, atol=1e-6, msg=f"{kind}: parameter {name}")
            moved |= not torch.equal(p, dict(build_method(kind).named_parameters())[name])
        assert moved, f"{kind}: the step changed nothing"
        # rank 0's running statistics are those of its own half-batch
        for name, b in ddp_model.named_buffers():
            torch.testing.assert_close(b, first_buffers[name], rtol=0, atol=1e-6, msg=f"{kind}: buffer {name}")
        # control: batch-norm statistics over the whole batch give a measurably different step
        diff = max((p - q).abs().max().item() for p, q in zip(whole.parameters(), want.parameters()))
        assert diff > 1e-5, f"{kind}: whole-batch and half-batch steps agree ({diff}); the test could not tell"
    assert HAVE_PRSR or len(jobs) == 1


def test_single_process_setup_needs_no_process_group(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = dist_utils.setup("cpu")
    assert (info.rank, info.world_size, info.distributed, info.is_main) == (0, 1, False, True)
    assert not torch.distributed.is_initialized()
    assert dist_utils.all_reduce_mean({"a": 2.0}, info) == {"a": 2.0}
    assert dist_utils.broadcast_object([1], info) == [1] and dist_utils.any_true(True, info)


def test_setup_rejects_a_bad_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ValueError, match="MASTER_ADDR is not set; launch with torchrun"):
        dist_utils.setup("cpu")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match=r"RANK=5 is not in \[0, WORLD_SIZE=2\)"):
        dist_utils.setup("cpu")
