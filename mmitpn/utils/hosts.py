"""The host package (mmdet, mmseg, mmpretrain) that runs a config."""
import importlib

from mmengine.config import Config

#: Scopes that are hosts: their ``utils.register_all_modules`` is called.
HOST_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')
#: Host of configs whose scope is ``mmitpn`` or missing.
FALLBACK_HOST = 'mmpretrain'


def get_host_scope(cfg: Config) -> str:
    """Name the host package of a config.

    Args:
        cfg (Config): The config; only ``cfg.default_scope`` is read.

    Returns:
        str: ``cfg.default_scope`` when it is one of :data:`HOST_SCOPES`,
        else :data:`FALLBACK_HOST` (``'mmpretrain'``), which covers scope
        ``'mmitpn'`` and configs without a scope.
    """
    scope = cfg.get('default_scope', None)
    return scope if scope in HOST_SCOPES else FALLBACK_HOST


def register_host_modules(cfg: Config) -> str:
    """Import mmitpn and register the modules of the config's host.

    Calls ``<host>.utils.register_all_modules(init_default_scope=False)``
    where the host package has it, so the runner can build the host's
    models, datasets, hooks and metrics. A config without
    ``default_scope`` gets the host as its scope; any other scope
    (``'mmitpn'`` included) is left as it is.

    Args:
        cfg (Config): The config. ``cfg.default_scope`` is read, and set
            when missing.

    Returns:
        str: The host whose modules were registered: ``'mmdet'``,
        ``'mmseg'`` or ``'mmpretrain'``.

    Raises:
        ImportError: The host package (or its ``utils``) cannot be imported.
    """
    import mmitpn  # noqa: F401
    import mmitpn.registry  # noqa: F401  (adds the ``mmitpn`` nodes)

    host = get_host_scope(cfg)
    try:
        host_utils = importlib.import_module(f'{host}.utils')
    except ImportError as e:
        raise ImportError(
            f'The config (default_scope={cfg.get("default_scope", None)!r}) '
            f'runs on {host}, which cannot be imported: {e}') from e
    register = getattr(host_utils, 'register_all_modules', None)
    if register is not None:
        register(init_default_scope=False)
    if cfg.get('default_scope', None) is None:
        cfg.default_scope = host
    return host
