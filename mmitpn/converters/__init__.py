"""Converters of foreign checkpoints to mmitpn keys.

- :mod:`.official`: the official iTPN pre-training, detection and
  segmentation checkpoints (github.com/sunsmarterjie/iTPN).
"""
from .official import Conversion, check_paths, convert_official

__all__ = ['Conversion', 'check_paths', 'convert_official']
