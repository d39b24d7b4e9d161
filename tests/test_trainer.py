"""The shared Trainer: exact resume, NaN guard, checkpoint safety, logs, validation, grids, load_method."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from trainer_tiny import SimulatedKill, TinyBN, TinyGAN, make_pairs, register

from baselines import registry
from sr_models import checkpoint as ckpt
from sr_models import distributed as dist_utils
from sr_models import trainer as trainer_mod
from sr_models.trainer import BatchSampler, NonFiniteLossError, TrainContext, Trainer, resolve_train_cfg


@pytest.fixture(autouse=True)
def _one_thread():
    # 2 cores shared with other test processes: OpenMP threads spin-waiting for a descheduled peer make
    # these millisecond steps 100x slower. One thread here; restored afterwards.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TRAIN = make_pairs(24, seed=1)
VALID = make_pairs(10, seed=2)


def cfg(**kw):
    base = dict(
        steps=8,
        batch_size=4,
        optimizer="adam",
        lr=1e-2,
        log_every=2,
        val_every=4,
        val_images=10,
        ckpt_every=4,
        grid_every=4,
        grid_images=3,
    )
    base.update(kw)
    return base


def build(cls, **model_kw):
    torch.manual_seed(0)
    return cls(channels=1, **model_kw)


def fit(method, run_dir, train_cfg, resume=False):
    return Trainer(
        method,
        TRAIN,
        VALID,
        run_dir,
        train_cfg,
        seed=5,
        meta={"profile": "tiny", "dataset": "tiny"},
        resume=resume,
        device="cpu",
    ).fit()


def state_of(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def train_rows(run_dir):
    with open(run_dir / "log.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["split"] == "train"]


@pytest.mark.parametrize("cls,optimizer", [(TinyBN, "adam"), (TinyGAN, "rmsprop_tf")])
def test_resume_after_kill_reaches_identical_parameters(tmp_path, cls, optimizer):
    c = cfg(optimizer=optimizer, lr=1e-3)
    straight = build(cls)
    fit(straight, tmp_path / "straight", c)

    killed = build(cls, crash_at=6)  # checkpoint at step 4; steps 5 and 6 run, then the "kill"
    with pytest.raises(SimulatedKill):
        fit(killed, tmp_path / "killed", c)
    assert torch.load(tmp_path / "killed" / "state.pt", weights_only=True)["step"] == 4
    resumed = build(cls)  # a new process: fresh weights, everything comes from the checkpoint
    fit(resumed, tmp_path / "killed", c, resume=True)

    assert_same_state(state_of(straight), state_of(resumed))
    # The log reads as one run: the killed session's rows after step 4 were replaced, not duplicated.
    a, b = train_rows(tmp_path / "straight"), train_rows(tmp_path / "killed")
    assert [r["step"] for r in b] == ["2", "4", "6", "8"]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]


def test_resume_can_extend_steps(tmp_path):
    straight = build(TinyBN)
    fit(straight, tmp_path / "a", cfg(steps=8))
    short = build(TinyBN)
    fit(short, tmp_path / "b", cfg(steps=6))  # ends mid-epoch: 24 images / batch 4 = 6 steps per epoch
    longer = build(TinyBN)
    fit(longer, tmp_path / "b", cfg(steps=8), resume=True)
    assert_same_state(state_of(straight), state_of(longer))
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["train"]["steps"] == 8 and config["resumed"][0]["steps"] == 8


def test_resume_refuses_a_different_configuration(tmp_path):
    fit(build(TinyBN), tmp_path, cfg(steps=2))
    with pytest.raises(ValueError, match="train.lr"):
        fit(build(TinyBN), tmp_path, cfg(steps=4, lr=0.5), resume=True)


def test_existing_checkpoint_is_never_overwritten(tmp_path):
    fit(build(TinyBN), tmp_path, cfg(steps=2))
    before = {p: (tmp_path / p).read_bytes() for p in ("model.safetensors", "state.pt", "config.json")}
    with pytest.raises(ckpt.RunExistsError, match="--resume.*--fresh"):
        fit(build(TinyBN), tmp_path, cfg(steps=2))
    assert before == {p: (tmp_path / p).read_bytes() for p in before}
    moved = ckpt.prepare_run_dir(tmp_path, resume=False, fresh=True)
    assert (
        moved.name.startswith(tmp_path.name + ".old-")
        and (moved / "model.safetensors").read_bytes() == before["model.safetensors"]
    )
    assert not tmp_path.exists()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    reference = build(TinyBN)
    fit(reference, tmp_path / "ref", cfg(steps=4))
    bad = build(TinyBN, nan_at=5)  # steps 5 and 6 (0-based 4, 5): step index 5 returns NaN
    with pytest.raises(NonFiniteLossError, match=r"step 6 .*loss=nan.*checkpoint \(step 4\)"):
        fit(bad, tmp_path / "run", cfg(steps=8))
    assert torch.load(tmp_path / "run" / "state.pt", weights_only=True)["step"] == 4
    reloaded = build(TinyBN)
    meta = ckpt.load_weights(reloaded, tmp_path / "run" / "model.safetensors")
    assert meta["step"] == "4"
    assert_same_state(state_of(reference), state_of(reloaded))
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_checkpoint_files_config_and_load_method(tmp_path, monkeypatch):
    register(monkeypatch)
    method = build(TinyBN, width=3)
    fit(method, tmp_path, cfg(steps=3, ckpt_every=2))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["method"] == "tiny_bn" and config["model_config"]["width"] == 3
    assert config["seed"] == 5 and config["profile"] == "tiny" and config["dataset"] == "tiny"
    assert config["train"]["steps"] == 3 and config["train"]["grad_clip"] is None  # defaults filled in
    assert config["world_size"] == 1 and config["versions"]["torch"] == torch.__version__
    assert "git" in config and "command" in config

    saved = load_file(tmp_path / "model.safetensors")
    assert "net.1.running_mean" in saved and int(saved["net.1.num_batches_tracked"]) == 3
    assert_same_state(state_of(method), saved)

    loaded = registry.load_method(tmp_path, device="cpu")
    assert isinstance(loaded, TinyBN) and not loaded.training
    assert torch.equal(loaded.net(to_lr(VALID)), method.eval().net(to_lr(VALID)))


def to_lr(data):
    return torch.from_numpy(data.lr).float() / 255


def test_load_method_errors_name_the_file(tmp_path, monkeypatch):
    register(monkeypatch)
    with pytest.raises(FileNotFoundError, match="not found"):
        registry.load_method(tmp_path / "nothing")
    fit(build(TinyBN), tmp_path, cfg(steps=1))
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00garbage")
    with pytest.raises(ValueError, match="model.safetensors.*unreadable"):
        registry.load_method(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        registry.load_method(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        registry.load_method(tmp_path)
    (tmp_path / "state.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="state.pt"):
        ckpt.load_state(tmp_path)


def test_logs_average_the_steps_and_validation_is_the_weighted_mean(tmp_path):
    method = build(TinyBN)
    fit(method, tmp_path, cfg(steps=6, log_every=4, val_every=6, val_images=10, batch_size=4))
    rows = list(csv.DictReader(open(tmp_path / "log.csv", newline="")))
    train = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train] == ["4", "6"]
    losses = method.losses
    assert float(train[0]["loss"]) == pytest.approx(np.mean(losses[:4]), rel=1e-12)
    assert float(train[1]["loss"]) == pytest.approx(np.mean(losses[4:6]), rel=1e-12)
    for key in ("data_time", "step_time", "images_per_s", "wall_time"):
        assert float(train[0][key]) > 0
    valid = [r for r in rows if r["split"] == "valid"]
    assert [r["step"] for r in valid] == ["6"]
    # validation batches of 4, 4, 2 weighted by size = the MSE over all 10 images, in eval mode
    with torch.no_grad():
        method.eval()
        expected = F.mse_loss(method.net(to_lr(VALID)), torch.from_numpy(VALID.hr).float() / 255).item()
        method.train()
        train_mode = F.mse_loss(method.net(to_lr(VALID)), torch.from_numpy(VALID.hr).float() / 255).item()
    assert float(valid[0]["mse"]) == pytest.approx(expected, rel=1e-5)
    assert abs(train_mode - expected) > 1e-4  # eval mode really mattered
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_validate_restores_train_mode(tmp_path):
    method = build(TinyBN)
    trainer = Trainer(method, TRAIN, VALID, tmp_path, cfg(), seed=0, device="cpu")
    method.train()
    trainer.validate()
    assert method.training and all(m.training for m in method.modules())


def test_sample_grid_layout(tmp_path):
    method = build(TinyBN)
    fit(method, tmp_path, cfg(steps=4, grid_every=4, grid_images=3))
    img = np.array(Image.open(tmp_path / "samples" / "step_000004.png"))
    assert img.shape == (3 * 34 + 2, 3 * 34 + 2)
    for i in range(3):
        y = 2 + 34 * i
        lr_tile, truth = img[y : y + 32, 2:34], img[y : y + 32, 70:102]
        assert np.array_equal(lr_tile, np.kron(VALID.lr[i, 0], np.ones((4, 4), np.uint8)))
        assert np.array_equal(truth, VALID.hr[i, 0])
    pred = (method.predict(to_lr(VALID)[:3])[:, 0] * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(img[2:34, 36:68], pred[0])


def test_batch_sampler_epochs_without_replacement_and_exact_state():
    s = BatchSampler(10, 4, seed=1)
    first = torch.cat([s.next() for _ in range(5)])  # 20 indices = 2 epochs
    assert sorted(first[:10].tolist()) == list(range(10)) and sorted(first[10:].tolist()) == list(range(10))
    state = s.state_dict()
    after = [s.next() for _ in range(3)]
    s2 = BatchSampler(10, 4, seed=99)
    s2.load_state_dict(state)
    assert all(torch.equal(a, s2.next()) for a in after)
    big = BatchSampler(3, 7, seed=0).next()  # batch larger than the data: still every image per epoch
    assert sorted(big[:6].tolist()) == [0, 0, 1, 1, 2, 2]


def test_grad_clip_limits_the_update(tmp_path):
    def update_norm(clip):
        m = build(TinyBN)
        before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
        fit(m, tmp_path / str(clip), cfg(steps=1, optimizer="sgd", lr=1.0, grad_clip=clip))
        return (torch.cat([p.detach().flatten() for p in m.parameters()]) - before).norm().item()

    free = update_norm(None)
    assert free > 0.01
    assert update_norm(1e-3) == pytest.approx(1e-3, rel=1e-3)


def test_train_config_defaults_and_errors():
    c = resolve_train_cfg({"steps": 7, "lr_d": 0.1})
    assert c["steps"] == 7 and c["batch_size"] == 32 and c["lr_d"] == 0.1
    with pytest.raises(ValueError, match="'batch_size' must be a positive integer"):
        resolve_train_cfg({"batch_size": 0})
    with pytest.raises(ValueError, match="grad_clip"):
        resolve_train_cfg({"grad_clip": -1})


def test_step_context_single_process_and_bf16(monkeypatch):
    monkeypatch.setattr(trainer_mod, "native_bf16", lambda device: True)  # the autocast path on any CPU
    info = dist_utils.setup("cpu")
    assert info.world_size == 1 and info.is_main
    conv = torch.nn.Conv2d(1, 2, 3)
    ctx = TrainContext(info, bf16=True)
    assert ctx.ddp(conv) is conv
    with ctx.autocast():
        assert conv(torch.rand(1, 1, 5, 5)).dtype == torch.bfloat16
    with TrainContext(info, bf16=False).autocast():
        assert conv(torch.rand(1, 1, 5, 5)).dtype == torch.float32


def test_bf16_training_runs_and_learns(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_mod, "native_bf16", lambda device: True)  # bf16 even where it is emulated
    method = build(TinyBN)
    fit(method, tmp_path, cfg(steps=12, bf16=True, lr=3e-2, log_every=12))
    assert all(math.isfinite(x) for x in method.losses)
    assert np.mean(method.losses[-3:]) < method.losses[0]
