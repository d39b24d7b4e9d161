"""The pixel-recursive model (conditioning network + gated PixelCNN prior), its samplers and the shared Trainer."""

__all__ = ["PixelRecursiveSR", "ConditioningNetwork", "Trainer", "load_profile"]


def __getattr__(name):
    if name == "PixelRecursiveSR":
        from .pixel_recursive import PixelRecursiveSR

        return PixelRecursiveSR
    if name == "ConditioningNetwork":
        from .conditioning import ConditioningNetwork

        return ConditioningNetwork
    if name == "Trainer":
        from .trainer import Trainer

        return Trainer
    if name == "load_profile":
        from .profiles import load_profile

        return load_profile
    raise AttributeError(f"module 'sr_models' has no attribute {name!r}")
