"""mmitpn: iTPN as a plugin of the OpenMMLab ecosystem.

Importing it registers mmitpn's types in its registries (scope
``mmitpn``) and changes nothing else: the guarantees of a run (weights-only
loading, crash-safe checkpoints, exact resume, one-line data errors) come
from the registered parts that a config names.
"""
from .version import __version__

__all__ = ['__version__']
