"""``import mmitpn`` and runs of its configs leave the hosts as they were.

A fresh interpreter records the host attributes mmitpn used to change
(``torch.load`` and its safe globals, ``CheckpointHook``'s methods, the
file backends and checkpoint loaders, ``LoadImageFromFile.transform``,
``mmcv.ops``, ``os.environ``, the warnings filters), then imports mmitpn,
then builds and trains each demo config for one iteration (Mask R-CNN with
``--amp``'s CPU wrapper, whose float32 ops are scoped to its autocast
context), and records them again: they must be the same objects. The
checkpoint each run wrote loads with ``weights_only=True`` and the
allow-list.
"""
import subprocess
import sys
import textwrap

from conftest import REPO, config_path

SCRIPT = textwrap.dedent('''
    import copy, os, sys, warnings
    import torch
    import mmcv.ops, mmcv.ops.nms, mmcv.ops.roi_align, mmcv.ops.roi_pool
    import mmcv.transforms
    from mmengine.fileio import io as fio
    from mmengine.fileio.backends import registry_utils as backends
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import checkpoint as ckpt
    import mmdet.utils, mmseg.utils, mmpretrain.utils  # the hosts first
    for host in (mmdet, mmseg, mmpretrain):
        host.utils.register_all_modules(init_default_scope=False)

    def snapshot():
        return dict(
            torch_load=torch.load,
            safe_globals=list(torch.serialization.get_safe_globals()),
            hook=dict(vars(CheckpointHook)),
            backends=dict(backends.backends),
            prefixes=dict(backends.prefix_to_backends),
            instances=dict(fio.backend_instances),
            loaders=dict(ckpt.CheckpointLoader._schemes),
            load_image=mmcv.transforms.LoadImageFromFile.transform,
            ops=dict(vars(sys.modules['mmcv.ops'])),
            nms=dict(vars(sys.modules['mmcv.ops.nms'])),
            roi_align=dict(vars(sys.modules['mmcv.ops.roi_align'].RoIAlign)),
            roi_pool=dict(vars(sys.modules['mmcv.ops.roi_pool'].RoIPool)),
            environ=dict(os.environ),
            warnings=list(warnings.filters))

    def differences(a, b):
        out = []
        for key in a:
            x, y = a[key], b[key]
            if isinstance(x, dict):
                for k in set(x) | set(y):
                    if key in ('backends', 'instances') and k not in x \\
                            and k.startswith(('mmitpn', ':{"backend": '
                                              '"mmitpn')):
                        continue  # a registration of mmitpn's own backend
                    if key == 'instances' and k not in x and type(
                            y[k]).__module__.startswith('mmengine.'):
                        continue  # MMEngine caching a backend of its own
                    a_, b_ = x.get(k, None), y.get(k, None)
                    same = a_ == b_ if key == 'environ' else a_ is b_
                    if not same:
                        out.append(f'{key}.{k}')
            elif key == 'safe_globals':  # kept in a set: order is free
                if set(map(id, x)) != set(map(id, y)):
                    out.append(key)
            elif key == 'warnings':
                # setuptools' pkg_resources adds its own filter each time
                # a host re-imports it
                if [f for f in y if 'pkg_resources' not in str(f[2])] != \
                        [f for f in x if 'pkg_resources' not in str(f[2])]:
                    out.append(key)
            elif x is not y:
                out.append(key)
        return out

    before = snapshot()
    import mmitpn, mmitpn.datasets, mmitpn.engine, mmitpn.models
    assert not differences(before, snapshot()), differences(
        before, snapshot())
    print('IMPORT OK')

    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmitpn.utils import (load_checkpoint_file, register_host_modules,
                              setup_amp)
    from mmitpn.utils.safe_load import unsafe_globals
    work = sys.argv[1]
    for name, amp in ((PRETRAIN, False), (DET, True), (SEG, False)):
        cfg = Config.fromfile(name)
        register_host_modules(cfg)
        cfg.work_dir = os.path.join(work, os.path.basename(name))
        if cfg.model.get('backbone', {}).get('init_cfg'):
            cfg.model.backbone.init_cfg = None
            cfg.model.neck.init_cfg = None
        cfg.train_dataloader.batch_size = 2
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
        cfg.train_dataloader.dataset.indices = 2
        cfg.train_cfg = dict(by_epoch=False, max_iters=1)
        cfg.param_scheduler = None
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
        cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
        cfg.default_hooks.checkpoint.by_epoch = False
        cfg.default_hooks.checkpoint.interval = 1
        cfg.default_hooks.logger.interval = 1
        cfg.log_processor = dict(by_epoch=False)
        if amp:
            setup_amp(cfg)
        Runner.from_cfg(cfg).train()
        # what the runner wrote loads with weights_only and the allow-list
        saved = os.path.join(cfg.work_dir, 'iter_1.pth')
        assert unsafe_globals(saved) == [], unsafe_globals(saved)
        assert load_checkpoint_file(saved)['meta']['iter'] == 1
    diff = differences(before, snapshot())
    print('RUN DIFF', diff)
    assert not diff, diff
    print('RUN OK')
''')


def test_import_and_runs_change_no_host_attribute(tmp_path, demo_data):
    script = SCRIPT.replace('PRETRAIN', repr(str(config_path(
        'itpn-tiny_pixel-mfm_1xb32-20e_demo.py')))).replace(
            'DET', repr(str(config_path(
                'itpn-tiny_mask-rcnn_1xb4-6e_demo.py')))).replace(
                    'SEG', repr(str(config_path(
                        'itpn-tiny_upernet_1xb4-2k_demo.py'))))
    res = subprocess.run(
        [sys.executable, '-c', script, str(tmp_path)], cwd=str(REPO),
        capture_output=True, text=True, timeout=900)
    assert 'IMPORT OK' in res.stdout, res.stderr[-4000:]
    assert res.returncode == 0 and 'RUN OK' in res.stdout, \
        res.stdout[-2000:] + res.stderr[-4000:]
