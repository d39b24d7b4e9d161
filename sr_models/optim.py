"""Optimisers of the learned methods, built from a profile's `train:` section.

`build_optimizer(params, train_cfg, prefix="")` reads `optimizer` (adam | rmsprop_tf | sgd), `lr`,
`betas` (adam), `weight_decay`, `momentum` (sgd, rmsprop_tf), `rms_decay` and `eps` (rmsprop_tf, adam).
With a prefix (e.g. "d_" for a GAN's discriminator) `d_lr`, `d_betas`, ... are read first and the
un-prefixed keys are the fall-back.

`RMSPropTF` is TensorFlow's RMSProp (`tf.compat.v1.train.RMSPropOptimizer`), the optimiser of the paper:

    ms  <- decay * ms + (1 - decay) * g^2          (ms starts at 1, not 0)
    mom <- momentum * mom + lr * g / sqrt(ms + eps) (eps inside the square root)
    p   <- p - mom

torch's `RMSprop` starts its accumulator at 0, so its first step is lr * g / sqrt((1-decay) g^2) =
lr / sqrt(0.05) ~ 4.5 lr per coordinate whatever the gradient's size; TensorFlow's first step is
~ lr * g. That is why the paper's settings need this class.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable

import torch

OPTIMIZERS = ("adam", "rmsprop_tf", "sgd")


class RMSPropTF(torch.optim.Optimizer):
    """TensorFlow-semantics RMSProp with momentum (see the module docstring for the update).

    `weight_decay` adds `weight_decay * p` to the gradient (L2, as TensorFlow's regularisers do).
    State per parameter: `ms` (starts at 1) and `mom` (starts at 0).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        decay: float = 0.95,
        momentum: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if not lr > 0:
            raise ValueError(f"RMSPropTF: lr must be > 0, got {lr}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"RMSPropTF: decay must be in [0, 1), got {decay}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"RMSPropTF: momentum must be in [0, 1), got {momentum}")
        if not eps >= 0:
            raise ValueError(f"RMSPropTF: eps must be >= 0, got {eps}")
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, decay, momentum, eps, wd = (
                group["lr"],
                group["decay"],
                group["momentum"],
                group["eps"],
                group["weight_decay"],
            )
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("RMSPropTF does not support sparse gradients")
                if wd:
                    g = g.add(p, alpha=wd)
                state = self.state[p]
                if not state:
                    state["ms"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    state["mom"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                ms, mom = state["ms"], state["mom"]
                ms.mul_(decay).addcmul_(g, g, value=1.0 - decay)
                mom.mul_(momentum).addcdiv_(g, ms.add(eps).sqrt_(), value=lr)
                p.sub_(mom)
        return loss


def _get(cfg: Dict[str, Any], key: str, prefix: str, default: Any) -> Any:
    if prefix and cfg.get(prefix + key) is not None:
        return cfg[prefix + key]
    value = cfg.get(key)
    return default if value is None else value


def build_optimizer(
    params: Iterable[torch.nn.Parameter], train_cfg: Dict[str, Any], prefix: str = ""
) -> torch.optim.Optimizer:
    """The optimiser `train_cfg` asks for, over `params`.

    Keys (each looked up as `prefix + key` first, then `key`): `optimizer` (adam | rmsprop_tf | sgd,
    default adam), `lr` (required), `betas` (adam, default [0.9, 0.999]), `weight_decay` (default 0),
    `momentum` (sgd default 0, rmsprop_tf default 0.9), `rms_decay` (rmsprop_tf, default 0.95),
    `eps` (adam and rmsprop_tf, default 1e-8).
    """
    kind = str(_get(train_cfg, "optimizer", prefix, "adam")).lower()
    lr = _get(train_cfg, "lr", prefix, None)
    if lr is None:
        raise ValueError(f"train config needs '{prefix}lr' or 'lr' (learning rate), got keys {sorted(train_cfg)}")
    lr = float(lr)
    if not lr > 0:
        raise ValueError(f"train config '{prefix}lr' must be > 0, got {lr}")
    wd = float(_get(train_cfg, "weight_decay", prefix, 0.0))
    eps = float(_get(train_cfg, "eps", prefix, 1e-8))
    params = list(params)
    if kind == "adam":
        betas = _get(train_cfg, "betas", prefix, (0.9, 0.999))
        if len(betas) != 2:
            raise ValueError(f"train config '{prefix}betas' must be two numbers, got {betas!r}")
        return torch.optim.Adam(params, lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps, weight_decay=wd)
    if kind == "rmsprop_tf":
        return RMSPropTF(
            params,
            lr=lr,
            decay=float(_get(train_cfg, "rms_decay", prefix, 0.95)),
            momentum=float(_get(train_cfg, "momentum", prefix, 0.9)),
            eps=eps,
            weight_decay=wd,
        )
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(_get(train_cfg, "momentum", prefix, 0.0)), weight_decay=wd)
    raise ValueError(f"train config '{prefix}optimizer' is {kind!r}; expected one of {', '.join(OPTIMIZERS)}")
