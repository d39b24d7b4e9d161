"""Baselines of Table 1 (bicubic, nearest neighbour, ResNet-L2, GAN, per-pixel CE), each a `SuperResolver`."""

from .registry import METHODS, TABLE_ROWS, get_method

__all__ = [
    "SuperResolver",
    "METHODS",
    "TABLE_ROWS",
    "get_method",
    "Bicubic",
    "NearestNeighbour",
    "ResNetL2",
    "GAN",
    "PixelCE",
]

_LAZY = {
    "Bicubic": "bicubic",
    "NearestNeighbour": "nearest",
    "ResNetL2": "resnet_l2",
    "GAN": "gan",
    "PixelCE": "pixel_ce",
}


def __getattr__(name):
    # Imported on first use so `import baselines` stays light (no model code loaded for the metrics).
    # (also SuperResolver: the registry, which the study and the analysis read, must not pull in torch)
    if name in _LAZY:
        return METHODS[_LAZY[name]].load_class()
    if name == "SuperResolver":
        from sr_models.interface import SuperResolver  # noqa: PLC0415

        return SuperResolver
    raise AttributeError(f"module 'baselines' has no attribute {name!r}")
