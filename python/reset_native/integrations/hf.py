"""Hugging Face transformers integration."""
from ._hf_processor import ReSETLogitsProcessor

__all__ = ["ReSETLogitsProcessor"]
