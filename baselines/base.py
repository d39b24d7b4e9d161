"""`SuperResolver` lives in `sr_models.interface` (the bottom of the model stack); kept importable here."""

from sr_models.interface import Decoder, SuperResolver

__all__ = ["Decoder", "SuperResolver"]
