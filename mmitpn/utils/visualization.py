"""``--show`` / ``--show-dir``: the host's visualization hook."""
from typing import Optional

from mmengine.config import Config, ConfigDict

from .hosts import get_host_scope

#: Visualization hook type of each host (``default_hooks.visualization``).
VIS_HOOK_TYPES = {
    'mmdet': 'DetVisualizationHook',
    'mmseg': 'SegVisualizationHook',
    'mmpretrain': 'VisualizationHook',
}


def trigger_visualization_hook(cfg: Config,
                               host: Optional[str] = None,
                               show: bool = False,
                               show_dir: Optional[str] = None,
                               wait_time: float = 2.,
                               interval: Optional[int] = None) -> Config:
    """Turn on the host's visualization hook for testing.

    - mmdet: ``DetVisualizationHook`` with ``draw=True`` and
      ``test_out_dir=show_dir`` (saved under ``work_dir/<timestamp>/``);
    - mmseg: ``SegVisualizationHook`` with ``draw=True``, and
      ``cfg.visualizer.save_dir = show_dir``;
    - mmpretrain (also scope ``mmitpn``): ``VisualizationHook`` with
      ``enable=True`` and ``out_dir=show_dir``.

    A missing ``default_hooks.visualization`` is added with the host's type.

    Args:
        cfg (Config): The config, edited in place.
        host (str, optional): ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``.
            None takes :func:`get_host_scope`. Defaults to None.
        show (bool): Show the results in a window. Defaults to False.
        show_dir (str, optional): Directory of the painted images; None
            saves none (unless ``show``). Defaults to None.
        wait_time (float): Seconds each shown image stays. Defaults to 2.
        interval (int, optional): Visualize every ``interval``-th sample;
            None keeps the hook's setting. Defaults to None.

    Returns:
        Config: ``cfg``.
    """
    host = host or get_host_scope(cfg)
    if cfg.get('default_hooks', None) is None:
        cfg.default_hooks = ConfigDict()
    hooks = cfg.default_hooks
    if hooks.get('visualization', None) is None:
        hooks.visualization = ConfigDict(type=VIS_HOOK_TYPES[host])
    vis = hooks.visualization
    if show:
        vis.show = True
        vis.wait_time = wait_time
    if interval is not None:
        vis.interval = interval

    if host == 'mmpretrain':
        vis.enable = True
        if show_dir is not None:
            vis.out_dir = show_dir
    else:
        vis.draw = True
        if host == 'mmdet' and show_dir is not None:
            vis.test_out_dir = show_dir
        elif host == 'mmseg' and show_dir is not None:
            if cfg.get('visualizer', None) is None:
                cfg.visualizer = ConfigDict(
                    type='SegLocalVisualizer',
                    vis_backends=[dict(type='LocalVisBackend')],
                    name='visualizer')
            cfg.visualizer.save_dir = show_dir
    return cfg
