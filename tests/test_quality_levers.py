"""The quality levers of issue 21 (docs/quality-search.md): weight averaging (sr_models/ema.py), the rate
schedule (sr_models/lr_schedule.py) and dropout in the prior's gated blocks; each off by default."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from test_pixel_recursive import TINY, order_index
from trainer_tiny import SimulatedKill, TinyBN, TinyGAN, make_pairs, register

from baselines import registry
from sr_models import checkpoint as ckpt
from sr_models import ema as ema_mod
from sr_models import lr_schedule
from sr_models.pixel_recursive import PixelRecursiveSR
from sr_models.profile_schema import ProfileError
from sr_models.profiles import PROFILE_NAMES, load_profile
from sr_models.sampling import sample_cached, sample_naive
from sr_models.trainer import Trainer


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TRAIN, VALID = make_pairs(24, seed=1), make_pairs(10, seed=2)


def cfg(**kw):
    base = dict(steps=8, batch_size=4, optimizer="adam", lr=1e-2, log_every=2, val_every=4, val_images=10)
    base.update(ckpt_every=4, grid_every=4, grid_images=2, **kw)
    return base


def fit(method, run_dir, train_cfg, resume=False, train=TRAIN):
    meta = {"profile": "tiny", "dataset": "tiny"}
    return Trainer(method, train, VALID, run_dir, train_cfg, seed=5, meta=meta, resume=resume, device="cpu").fit()


def build(cls, **kw):
    torch.manual_seed(0)
    return cls(channels=1, **kw)


def tensors(path):
    return load_file(str(path))


# -- the rate schedule ----------------------------------------------------------------------------------------
def test_schedule_values_at_known_steps():
    c = dict(steps=100, lr_warmup=10, lr_schedule="cosine", lr_min_factor=0.1)
    assert lr_schedule.lr_factor(0, c) == pytest.approx(0.1)  # (0 + 1) / 10
    assert lr_schedule.lr_factor(4, c) == pytest.approx(0.5)
    assert lr_schedule.lr_factor(10, c) == pytest.approx(1.0)  # decay starts at the top
    assert lr_schedule.lr_factor(55, c) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way: cos(pi/2) = 0
    assert lr_schedule.lr_factor(100, c) == pytest.approx(0.1)  # the floor, and it stays there
    assert lr_schedule.lr_factor(500, c) == pytest.approx(0.1)
    lin = dict(steps=100, lr_schedule="linear", lr_decay_steps=50)
    assert lr_schedule.lr_factor(0, lin) == 1.0 and lr_schedule.lr_factor(25, lin) == pytest.approx(0.5)
    assert lr_schedule.lr_factor(75, lin) == 0.0  # past lr_decay_steps: the floor (0 by default)
    assert lr_schedule.lr_factor(37, dict(steps=100)) == 1.0  # nothing asked: the constant rate
    assert not lr_schedule.enabled({"steps": 5}) and lr_schedule.enabled({"lr_warmup": 3})


def test_schedule_sets_every_group_before_each_step_and_counts_for_resume():
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opts = {
        "g": torch.optim.SGD([p], lr=0.2),
        "d": torch.optim.SGD([q], lr=0.4),
    }
    c = dict(steps=4, lr_schedule="linear", lr_warmup=0)
    sched = lr_schedule.install(opts, c)
    seen = []
    for _ in range(4):
        for o in opts.values():
            p.grad, q.grad = torch.ones(1), torch.ones(1)
            o.step()
        seen += [opts["g"].param_groups[0]["lr"], opts["d"].param_groups[0]["lr"]]
    assert seen == pytest.approx([0.2, 0.4, 0.15, 0.3, 0.1, 0.2, 0.05, 0.1])  # the GAN-like ratio is kept
    assert p.item() == pytest.approx(-(0.2 + 0.15 + 0.1 + 0.05))  # the rates were really used
    assert sched.state_dict() == {"steps": {"g": 4, "d": 4}}


def test_schedule_and_ema_keys_are_range_checked_at_load():
    bad = [
        ("lr_schedule", "exp", "lr_schedule"),
        ("lr_warmup", -1, "lr_warmup"),
        ("lr_min_factor", 1.5, "lr_min_factor"),
        ("lr_decay_steps", 0, "lr_decay_steps"),
        ("ema_half_life", 0, "ema_half_life"),
        ("ema_start", -2, "ema_start"),
    ]
    for key, value, name in bad:
        with pytest.raises(ProfileError, match=f"methods.pixel_recursive.train.*{name}"):
            load_profile("smoke", overrides=[f"methods.pixel_recursive.train.{key}={value}"])
    with pytest.raises(ProfileError, match="prior_dropout"):
        load_profile("smoke", overrides=["methods.pixel_recursive.model.prior_dropout=1.0"])
    ok = load_profile(
        "smoke",
        overrides=[
            "methods.gan.train.ema_half_life=50",
            "methods.pixel_recursive.train.lr_schedule=cosine",
            "methods.pixel_recursive.model.prior_dropout=0.5",
        ],
    )
    assert ok["methods"]["gan"]["train"]["ema_half_life"] == 50


BASELINES = ("resnet_l2", "gan", "pixel_ce")


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_shipped_profiles_leave_every_lever_off_but_averaging_and_quicks_schedule(name):
    """smoke: every lever off; quick: the pixel-recursive model averages its weights (half-life 200 steps) and
    decays its rate (Adam 4e-3 over 4,000 steps, cosine, warm-up 200, floor 5 %), twice the budget of the quality
    search's best point per CPU-minute, and every baseline does the same scaled to its own steps (half-life and
    warm-up 5 % of them, floor 5 %) at its own rate; paper: every learned method averages (half-life 1,386 steps)
    at the paper's constant rate. The corners models as shipped. No other schedule, and no dropout anywhere. quick
    trains in bf16 autocast but for the GAN; smoke and paper in float32."""
    profile = load_profile(name)
    corners = list(((profile.get("corners") or {}).get("models") or {}).values())
    for method, section in list(profile["methods"].items()) + [(None, c) for c in corners]:
        train = section.get("train") or {}
        if name == "quick" and section not in corners:
            five_percent = train["steps"] // 20
            assert train["ema_half_life"] == five_percent and train["lr_warmup"] == five_percent, method
            assert (train["lr_schedule"], train["lr_min_factor"]) == ("cosine", 0.05), method
        elif name == "paper" and section not in corners:
            assert train["ema_half_life"] == 1386 and not lr_schedule.enabled(train)
        else:
            assert not ema_mod.enabled(train) and not lr_schedule.enabled(train)
        assert not (section.get("model") or {}).get("prior_dropout")
    if name == "quick":
        pr = profile["methods"]["pixel_recursive"]["train"]
        assert (pr["lr"], pr["steps"], pr["ema_half_life"]) == (4.0e-3, 4000, 200)
        # the baselines keep the steps and rates they had before they were given the practices
        steps = {m: (profile["methods"][m]["train"]["steps"], profile["methods"][m]["train"]["lr"]) for m in BASELINES}
        assert steps == {"resnet_l2": (2400, 1.0e-3), "gan": (1000, 2.0e-4), "pixel_ce": (1600, 1.0e-3)}
    # bf16 autocast (where the CPU has it) in quick for every learned method but the GAN, whose samples it made
    # fool the observer less often; float32 everywhere in paper and smoke
    bf16 = {m: section["train"].get("bf16", False) for m, section in profile["methods"].items() if "train" in section}
    quick = name == "quick"
    assert bf16 == {"pixel_recursive": quick, "resnet_l2": quick, "gan": False, "pixel_ce": quick}


# -- weight averaging -----------------------------------------------------------------------------------------
def test_ema_follows_the_half_life_formula():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=1.0)
    avg = ema_mod.install({"m": opt}, dict(ema_half_life=2.0, ema_start=1))
    d = 0.5**0.5
    assert avg.decay == pytest.approx(d)
    values, expect = [], None
    for t in range(5):
        p.grad = -torch.full((2,), float(t + 1))  # p goes 1, 3, 6, 10, 15
        opt.step()
        values.append(p[0].item())
        expect = values[0] if t == 0 else d * expect + (1 - d) * values[-1]  # the first update copies (start=1)
    assert avg.shadow["m"][0][0].item() == pytest.approx(expect)
    assert expect != pytest.approx(values[-1])  # the average is not the last value
    with avg.applied():
        assert p[0].item() == pytest.approx(expect)
    assert p[0].item() == 15.0  # the trained value is back


def test_checkpoint_says_which_weights_it_holds(tmp_path, monkeypatch):
    register(monkeypatch)
    fit(build(TinyBN), tmp_path / "off", cfg())
    assert ckpt.weights_held(tmp_path / "off" / ckpt.WEIGHTS) == "raw"
    assert not (tmp_path / "off" / ckpt.RAW_WEIGHTS).exists()
    assert "ema" not in torch.load(tmp_path / "off" / ckpt.STATE, weights_only=True)

    method = build(TinyBN)
    fit(method, tmp_path / "on", cfg(ema_half_life=3))
    run = tmp_path / "on"
    assert ckpt.weights_held(run / ckpt.WEIGHTS) == "ema" and ckpt.weights_held(run / ckpt.RAW_WEIGHTS) == "raw"
    state = torch.load(run / ckpt.STATE, weights_only=True)
    raw, averaged = tensors(run / ckpt.RAW_WEIGHTS), tensors(run / ckpt.WEIGHTS)
    for k, v in state["model"].items():  # state.pt continues from the trained weights
        assert torch.equal(raw[k], v)
    w = "net.0.weight"
    assert torch.equal(averaged[w], state["ema"]["shadow"]["model"][0]) and not torch.equal(averaged[w], raw[w])
    assert torch.equal(averaged["net.1.running_mean"], raw["net.1.running_mean"])  # buffers are the model's own
    loaded = registry.load_method(run, device="cpu")  # what evaluation uses: the average
    assert torch.equal(loaded.net[0].weight.detach(), averaged[w])
    assert "ema_mse" in (run / "log.csv").read_text().splitlines()[0].split(",")  # the average is validated too


@pytest.mark.parametrize("cls,optimizer", [(TinyBN, "adam"), (TinyGAN, "rmsprop_tf")])
def test_exact_resume_with_ema_and_schedule(tmp_path, cls, optimizer):
    c = cfg(optimizer=optimizer, lr=1e-3, ema_half_life=2.5, ema_start=1, lr_schedule="cosine", lr_warmup=2)
    straight = build(cls)
    fit(straight, tmp_path / "straight", c)
    with pytest.raises(SimulatedKill):
        fit(build(cls, crash_at=6), tmp_path / "killed", c)  # checkpoint at 4; steps 5, 6 move EMA and schedule
    resumed = build(cls)
    fit(resumed, tmp_path / "killed", c, resume=True)
    for name in (ckpt.WEIGHTS, ckpt.RAW_WEIGHTS):
        a, b = tensors(tmp_path / "straight" / name), tensors(tmp_path / "killed" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    sa = torch.load(tmp_path / "straight" / ckpt.STATE, weights_only=True)
    sb = torch.load(tmp_path / "killed" / ckpt.STATE, weights_only=True)
    assert sa["lr_schedule"] == sb["lr_schedule"] == {"steps": {k: 8 for k in sa["lr_schedule"]["steps"]}}
    assert sa["ema"]["updates"] == sb["ema"]["updates"]


def test_levers_off_change_nothing(tmp_path):
    """A train config naming every lever at its off value trains exactly what a config without them trains."""
    a, b = build(TinyBN), build(TinyBN)
    fit(a, tmp_path / "a", cfg())
    fit(b, tmp_path / "b", cfg(lr_schedule="constant", lr_warmup=0, ema_half_life=None))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


def test_ema_weights_give_the_same_log_prob_and_samples_as_a_plain_model(tmp_path):
    """EMA changes only which weights are used: the averaged weights loaded into a plain model give exactly
    what the checkpoint's model computes (log_prob, cached and naive samples)."""
    torch.manual_seed(0)
    method = PixelRecursiveSR(1, **TINY)
    c = dict(steps=3, batch_size=4, lr=1e-2, log_every=3, val_every=3, val_images=4, ckpt_every=3, grid_every=3)
    trainer = Trainer(method, TRAIN, VALID, tmp_path, dict(c, grid_images=0, ema_half_life=1.5), seed=1, device="cpu")
    trainer.fit()
    averaged = trainer._ema.averaged_state_dict(method)
    plain = PixelRecursiveSR(1, **TINY)
    plain.load_state_dict(averaged)
    plain.eval()
    loaded = ckpt.load_method(tmp_path, lambda name, where: PixelRecursiveSR)
    assert any(not torch.equal(averaged[k], v) for k, v in method.state_dict().items())  # average != trained
    lr, hr = torch.from_numpy(VALID.lr[:3]).float() / 255, torch.from_numpy(VALID.hr[:3])
    with torch.no_grad():
        assert torch.equal(loaded.log_prob(lr, hr), plain.log_prob(lr, hr))
        a = plain.cond_logits(lr)[:, :6, :7].contiguous()
        assert torch.equal(loaded.cond_logits(lr)[:, :6, :7], a)
    u = torch.rand(3, 1, 6, 7, generator=torch.Generator().manual_seed(2))
    for model in (loaded, plain):
        assert torch.equal(
            sample_cached(model, a, u, 0.9, False, progress=False),
            sample_naive(plain, a, u, 0.9, False, progress=False),
        )
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    assert torch.equal(
        loaded.sample(lr[:1], generator=g(), progress=False), plain.sample(lr[:1], generator=g(), progress=False)
    )


# -- dropout in the prior's gated blocks ----------------------------------------------------------------------
def dropped(channels: int, p: float = 0.5, seed: int = 0) -> PixelRecursiveSR:
    torch.manual_seed(seed)
    model = PixelRecursiveSR(channels, **TINY, prior_dropout=p)
    with torch.no_grad():
        model.prior.head2.conv.weight.mul_(4.0)  # samples far from uniform noise
    return model


def test_dropout_off_by_default_and_recorded_when_on():
    torch.manual_seed(0)
    off = PixelRecursiveSR(1, **TINY)
    on = dropped(1)
    assert "prior_dropout" not in off.model_config() and on.model_config()["prior_dropout"] == 0.5
    assert off.state_dict().keys() == on.state_dict().keys()  # no new weights: old checkpoints load
    assert isinstance(off.prior.blocks[0].drop, torch.nn.Identity)
    hr = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
    on.train()
    with torch.no_grad():
        assert not torch.equal(on.prior_logits(hr), on.prior_logits(hr))  # active while training
        on.eval()
        assert torch.equal(on.prior_logits(hr), on.prior_logits(hr))  # and off in eval mode
    with pytest.raises(ValueError, match="dropout"):
        PixelRecursiveSR(1, **TINY, prior_dropout=1.0)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_dropout_keeps_the_sub_pixel_order(channels, mode):
    """Perturbing a sub-pixel leaves every earlier sub-pixel's logits unchanged, with dropout 0.5, in eval mode
    and in train mode (the same dropout masks for both passes: the same RNG state)."""
    model = dropped(channels, seed=1).train(mode == "train")
    hr = torch.randint(0, 256, (1, channels, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    order = order_index(32, channels)
    with torch.no_grad():
        torch.manual_seed(7)
        base = model.prior_logits(hr)
        for r, c, g in [(0, 0, 0), (5, 17, channels - 1), (17, 9, 0), (31, 30, 0)]:
            changed = hr.clone()
            changed[0, g, r, c] = (int(hr[0, g, r, c]) + 128) % 256
            torch.manual_seed(7)
            diff = (model.prior_logits(changed) - base).abs().amax(-1)[0].permute(2, 0, 1)
            k = order[g, r, c]
            assert diff[order <= k].max().item() < 1e-5, f"perturbing {(r, c, g)} changed an earlier sub-pixel"
            assert diff[order > k].max().item() > 1e-3


@pytest.mark.parametrize("channels", [1, 3])
def test_dropout_eq8_by_hand_in_eval_mode(channels):
    model = dropped(channels).eval()
    hr = torch.randint(0, 256, (3, channels, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    lr = torch.rand(3, channels, 8, 8)
    with torch.no_grad():
        a, b = (t.double() for t in model(lr, hr))
        tgt = hr.long().unsqueeze(1)
        full = torch.logsumexp(a + b, 1) - (a + b).gather(1, tgt)[:, 0]
        cond = torch.logsumexp(a, 1) - a.gather(1, tgt)[:, 0]
        assert model.loss(lr, hr).item() == pytest.approx((full.mean() + cond.mean()).item(), rel=1e-5)
        assert torch.allclose(model.log_prob(lr, hr).double(), -full.flatten(1).sum(1), rtol=1e-5)
    model.train()  # training mode: Eq. 8 still holds for the dropped-out network of that pass
    torch.manual_seed(3)
    a, b = (t.double().detach() for t in model(lr, hr))
    torch.manual_seed(3)
    full = torch.logsumexp(a + b, 1) - (a + b).gather(1, tgt)[:, 0]
    cond = torch.logsumexp(a, 1) - a.gather(1, tgt)[:, 0]
    assert model.loss(lr, hr).item() == pytest.approx((full.mean() + cond.mean()).item(), rel=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_dropout_cached_sampler_equals_naive(channels):
    """On a 6x7 crop of A (the prior is fully convolutional), in eval mode: the same samples and logits."""
    model = dropped(channels).eval()
    gen = torch.Generator().manual_seed(3)
    lr = torch.rand(2, channels, 8, 8, generator=gen)
    with torch.no_grad():
        a = model.cond_logits(lr)[:, :6, :7].contiguous()
    u = torch.rand(2, channels, 6, 7, generator=gen)
    rec_n, rec_c = torch.zeros(2, 6, 7, channels, 256), torch.zeros(2, 6, 7, channels, 256)
    naive = sample_naive(model, a, u, 0.9, False, progress=False, record=rec_n)
    cached = sample_cached(model, a, u, 0.9, False, progress=False, record=rec_c)
    assert torch.equal(naive, cached) and (rec_n - rec_c).abs().max().item() < 1e-5
    assert len(torch.unique(naive)) > 5


def test_dropout_sample_switches_to_eval_mode_and_back():
    """`sample` from a model left in training mode: dropout off (cached == naive, repeatable), mode restored."""
    model = dropped(1).train()
    lr = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    x_c = model.sample(lr, temperature=0.9, generator=g(), progress=False)
    x_n = model.sample(lr, temperature=0.9, generator=g(), cached=False, progress=False)
    assert torch.equal(x_c, x_n) and model.training
    assert len(torch.unique(x_c)) > 5


# -- bench/quality_search.py's own logic (its quick mode trains and evaluates: run it by hand, ~1 min) ---------
def test_search_levers_are_valid_overrides_of_the_quick_profile(load_script):
    qs = load_script("bench/quality_search.py")
    quick = load_profile("quick")
    for name in qs.LEVERS:
        load_profile("quick", overrides=qs.config_overrides(name, quick))  # every lever is a valid profile
    assert qs.config_overrides("batch64", quick) == [f"{qs.PR}.train.batch_size=64", f"{qs.PR}.train.steps=1000"]
    # the earlier quick profiles stay one combination away: 6 gated blocks of 5x5 at a constant rate, 2,000
    # steps of 16 with averaging, or batch 32 x 1,000 steps without it
    old = qs.config_overrides("prior6x5+constant+steps2000", quick)
    old_quick = load_profile("quick", overrides=old)["methods"]["pixel_recursive"]
    assert (old_quick["model"]["prior_layers"], old_quick["model"]["prior_kernel"]) == (6, 5)
    assert old_quick["train"]["steps"] == 2000 and not lr_schedule.enabled(old_quick["train"])
    older = load_profile("quick", overrides=qs.config_overrides("prior6x5+constant+steps2000+batch32+no_ema", quick))
    assert older["methods"]["pixel_recursive"]["train"]["steps"] == 1000
    assert not ema_mod.enabled(older["methods"]["pixel_recursive"]["train"])
    before = load_profile("quick", overrides=qs.config_overrides("quick3000", quick))["methods"]["pixel_recursive"]
    assert (before["train"]["steps"], before["train"]["lr"], before["train"]["lr_warmup"]) == (3000, 2.0e-3, 150)
    assert before["train"]["ema_half_life"] == 100
    combo = qs.config_overrides("ema_h100+cosine", quick)
    assert f"{qs.PR}.train.ema_half_life=100" in combo and f"{qs.PR}.train.lr_warmup=200" in combo  # 5 % of 4,000 steps
    earlier = load_profile("quick", overrides=qs.config_overrides("quick2000", quick))["methods"]["pixel_recursive"]
    assert [earlier["train"][k] for k in ("steps", "lr", "lr_warmup", "ema_half_life")] == [2000, 4.0e-3, 100, 100]
    # a later lever sees the earlier ones: the warm-up is 5 % of batch32's 2,000 steps
    assert f"{qs.PR}.train.lr_warmup=100" in qs.config_overrides("batch32+cosine", quick)
    with pytest.raises(SystemExit, match="unknown lever"):
        qs.config_overrides("ema_h100+nope", quick)
    # the default screen takes the levers that set a key of --methods: none of them for a baseline alone
    assert qs.parse_args(["--full", "--methods", "gan"]).levers == []
    assert (
        "ema_h100" in qs.parse_args(["--full"]).levers
        and "ema_h100" in qs.parse_args(["--full", "--methods", "gan", "pixel_recursive"]).levers
    )


def test_search_table_and_eval_rate(load_script):
    qs = load_script("bench/quality_search.py")
    lines = ["pixel_recursive: predicted pixel_recursive_t1.0, pixel_recursive_t0.9 in 4.0 s", "other"]
    assert qs._samples_per_s(lines, "pixel_recursive", 100) == 50.0  # 100 images x 2 rows / 4 s
    assert math.isnan(qs._samples_per_s(lines, "gan", 100))
    rec = dict(config="c", method="pixel_recursive", steps=10, train_min=1.0, test_nll_bpd=2.5, samples_per_s=3.0)
    rec.update({"fooled_t1.0": 10.0, "fooled_ci_low_t1.0": 8.0, "fooled_ci_high_t1.0": 12.0})
    table = qs.markdown([dict(rec, seed=0), dict(rec, seed=1, test_nll_bpd=2.7, **{"fooled_t1.0": 20.0})])
    assert "| c | 0 | pixel_recursive | 10 | 1.00 | 2.500 | 10.0 [8.0, 12.0] | 3.0 |" in table
    assert "| c | mean (sd) of 2 | pixel_recursive | 10 | 1.000 (0.000) | 2.600 (0.141) | 15.000 (7.071) |" in table
