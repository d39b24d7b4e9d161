"""RMSPropTF against a hand-written NumPy recurrence of TensorFlow's RMSProp; build_optimizer's keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_models.optim import RMSPropTF, build_optimizer


def tf_rmsprop_numpy(p0, grads, lr, decay=0.95, momentum=0.9, eps=1e-8, weight_decay=0.0):
    """tf.compat.v1.train.RMSPropOptimizer (momentum, not centred), written out in float64."""
    p = p0.astype(np.float64).copy()
    ms = np.ones_like(p)  # TensorFlow initialises the mean-square accumulator to 1
    mom = np.zeros_like(p)
    out = []
    for g in grads:
        g = g + weight_decay * p
        ms = decay * ms + (1 - decay) * g * g
        mom = momentum * mom + lr * g / np.sqrt(ms + eps)
        p = p - mom
        out.append(p.copy())
    return out


def run_torch(opt_cls, p0, grads, **kw):
    p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = opt_cls([p], **kw)
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_rmsprop_tf_matches_tensorflow_recurrence(weight_decay):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(scale=s, size=(3, 4)) for s in (1e-3, 0.1, 2.0, 0.5, 1e-2, 3.0)]
    want = tf_rmsprop_numpy(p0, grads, lr=4e-4, weight_decay=weight_decay)
    got = run_torch(RMSPropTF, p0, grads, lr=4e-4, decay=0.95, momentum=0.9, eps=1e-8, weight_decay=weight_decay)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


def test_torch_rmsprop_takes_a_huge_first_step():
    p0 = np.zeros(5)
    g = [np.full(5, 1e-3)]
    tf_step = np.abs(tf_rmsprop_numpy(p0, g, lr=4e-4)[0])
    torch_step = np.abs(run_torch(torch.optim.RMSprop, p0, g, lr=4e-4, alpha=0.95, momentum=0.9, eps=1e-8)[0])
    ours = np.abs(run_torch(RMSPropTF, p0, g, lr=4e-4)[0])
    np.testing.assert_allclose(ours, tf_step, rtol=1e-12)
    # TF: lr * g / sqrt(0.95 + 0.05 g^2) ~ 4.1e-7; torch: lr / sqrt(0.05) ~ 1.8e-3, whatever g is.
    np.testing.assert_allclose(tf_step, 4e-4 * 1e-3 / np.sqrt(0.95 + 0.05e-6 + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(torch_step, 4e-4 / np.sqrt(0.05), rtol=1e-4)
    assert (torch_step / tf_step).min() > 4000


def test_build_optimizer_kinds_and_prefixes():
    params = [torch.nn.Parameter(torch.zeros(2))]
    adam = build_optimizer(params, {"optimizer": "adam", "lr": 1e-3, "betas": [0.5, 0.9], "d_lr": 7e-4}, prefix="d_")
    assert isinstance(adam, torch.optim.Adam)
    assert adam.param_groups[0]["lr"] == 7e-4 and adam.param_groups[0]["betas"] == (0.5, 0.9)
    g = build_optimizer(params, {"optimizer": "adam", "lr": 1e-3, "d_lr": 7e-4})
    assert g.param_groups[0]["lr"] == 1e-3  # no prefix: the prefixed key is ignored
    rms = build_optimizer(params, {"optimizer": "rmsprop_tf", "lr": 4e-4})
    group = rms.param_groups[0]
    assert isinstance(rms, RMSPropTF) and (group["decay"], group["momentum"], group["eps"]) == (0.95, 0.9, 1e-8)
    sgd = build_optimizer(params, {"optimizer": "SGD", "lr": 0.1, "d_optimizer": "adam", "momentum": 0.5})
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.5
    assert isinstance(
        build_optimizer(params, {"optimizer": "SGD", "lr": 0.1, "d_optimizer": "adam"}, prefix="d_"), torch.optim.Adam
    )


def test_build_optimizer_errors():
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="'optimizer' is 'lbfgs'.*adam, rmsprop_tf, sgd"):
        build_optimizer(params, {"optimizer": "lbfgs", "lr": 1.0})
    with pytest.raises(ValueError, match="needs 'lr'"):
        build_optimizer(params, {"optimizer": "adam"})
    with pytest.raises(ValueError, match="must be > 0"):
        build_optimizer(params, {"lr": 0})
