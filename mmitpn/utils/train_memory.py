"""Peak memory of one training step of a config, measured on the CPU and
scaled to a GPU's per-device batch (an estimate, labelled as one).

A config's model is built at its real size (weights random, no checkpoint
read), fed a synthetic batch at the config's real input size (detection:
the largest training scale of the pipeline; segmentation: the crop;
ImageNet: the crop) and run for one forward and backward pass under the
config's precision (AMP configs: bfloat16 autocast, the CPU's half
precision, 2 bytes per activation as fp16 on a GPU). The measurement runs
in a fresh process and reads its peak resident memory (``VmHWM``, reset
once the model is built) above the memory it held then.

Two such measurements (the real input and a smaller one) separate the
memory that grows with the input from the rest; the estimate for ``N``
images per GPU (:func:`estimate_gpu_bytes`) adds what a GPU step holds
besides: the fp32 weights and AdamW's two fp32 moments of the trainable
parameters. It leaves out the CUDA context (about 0.5-1 GB) and the
allocator's fragmentation, and CPU and CUDA kernels keep different
temporaries: it is an estimate, and a result near 80 GB calls for a
measurement on the GPU.
"""
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence, Tuple

import torch

GIB = 2**30


def _iter_scales(node):
    """``(w, h)`` scales of resize steps anywhere in a pipeline config."""
    if isinstance(node, dict):
        for key in ('scale', 'scales'):
            value = node.get(key)
            if isinstance(value, (list, tuple)) and len(value) == 2 and \
                    all(isinstance(v, (int, float)) for v in value):
                yield tuple(value)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    if isinstance(v, (list, tuple)) and len(v) == 2:
                        yield tuple(v)
        for v in node.values():
            yield from _iter_scales(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _iter_scales(v)


def default_input_size(cfg) -> Tuple[int, int]:
    """``(H, W)`` of the largest training input of a config.

    - mmdet: the longest and the shortest side allowed by the training
      pipeline's resize scales (e.g. ``(800, 1333)`` for the DETR-style
      augmentation up to 1333 x 800), landscape;
    - mmseg: the data preprocessor's ``size`` (the crop);
    - mmpretrain: the backbone's ``img_size`` (224 by default).

    Args:
        cfg (mmengine.Config): The config.

    Returns:
        tuple[int, int]: Height and width.
    """
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        pipeline = cfg.train_dataloader.dataset.get('pipeline', [])
        scales = list(_iter_scales(pipeline))
        if not scales:
            raise ValueError('No resize scale found in the training '
                             'pipeline; give the input size.')
        long = max(max(s) for s in scales)
        short = max(min(s) for s in scales)
        return int(short), int(long)
    if scope == 'mmseg':
        size = cfg.model.data_preprocessor.get('size') or cfg.get(
            'crop_size')
        return int(size[0]), int(size[1])
    size = cfg.model.backbone.get('img_size', 224)
    size = (size, size) if isinstance(size, int) else size
    return int(size[0]), int(size[1])


def _num_classes(head) -> int:
    head = head[0] if isinstance(head, (list, tuple)) else head
    return int(head.get('num_classes', 80))


def synthetic_batch(cfg, num_images: int, size: Tuple[int, int]) -> dict:
    """A batch as the dataloader gives it (``inputs`` uint8 images,
    ``data_samples`` with ground truth), for a config's host.

    Detection images carry 20 boxes with masks each; segmentation maps and
    labels are uniform random; self-supervised CLIP inputs get a BEiT-size
    mask of 75 patches.

    Args:
        cfg (mmengine.Config): The config.
        num_images (int): Images in the batch.
        size (tuple[int, int]): ``(H, W)`` of each image.

    Returns:
        dict: ``dict(inputs=[...], data_samples=[...])``.
    """
    scope = cfg.get('default_scope')
    h, w = size
    gen = torch.Generator().manual_seed(0)
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        return demo_mm_inputs(
            batch_size=num_images,
            image_shapes=[(3, h, w)] * num_images,
            num_items=[20] * num_images,
            num_classes=_num_classes(cfg.model.roi_head.bbox_head),
            with_mask=True)
    inputs = [
        torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
        for _ in range(num_images)
    ]
    if scope == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        classes = int(cfg.model.decode_head.num_classes)
        samples = []
        for _ in range(num_images):
            s = SegDataSample(
                metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                              pad_shape=(h, w)))
            s.gt_sem_seg = PixelData(data=torch.randint(
                0, classes, (1, h, w), generator=gen))
            samples.append(s)
        return _collate(cfg, inputs, samples)
    from mmpretrain.structures import DataSample
    samples = []
    for _ in range(num_images):
        s = DataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        head = cfg.model.get('head') or {}
        if 'num_classes' in head:
            s.set_gt_label(int(torch.randint(0, head['num_classes'], (1, ),
                                             generator=gen)))
        if cfg.model.type == 'mmitpn.ITPNCLIP':
            grid = (h // 16, w // 16)
            mask = torch.zeros(grid[0] * grid[1], dtype=torch.bool)
            mask[torch.randperm(mask.numel(), generator=gen)[:75]] = True
            s.set_field(mask.view(grid), 'mask')
        samples.append(s)
    return _collate(cfg, inputs, samples)


def _collate(cfg, inputs, samples) -> dict:
    """Collate per-image samples with the config's ``collate_fn``
    (``pseudo_collate`` by default; self-supervised configs stack with
    ``default_collate``)."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import FUNCTIONS
    collate_cfg = cfg.train_dataloader.get('collate_fn')
    collate = pseudo_collate
    if collate_cfg:
        collate = FUNCTIONS.get(collate_cfg['type'])
    return collate([dict(inputs=x, data_samples=s)
                    for x, s in zip(inputs, samples)])


def _strip_checkpoints(node):
    """Drop every ``init_cfg`` that reads a file, recursively."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and 'checkpoint' in init:
            node['init_cfg'] = None
        for v in node.values():
            _strip_checkpoints(v)
    elif isinstance(node, list):
        for v in node:
            _strip_checkpoints(v)


def _clip_weights(cfg, folder: str) -> None:
    """Point a CLIP teacher at random weights of the official size (the
    OpenAI files are not read): ViT-B/16 for ``*ViT-B-16*``, else
    ViT-L/14."""
    teacher = cfg.model.get('teacher') or {}
    if teacher.get('type') != 'mmitpn.CLIPTeacher':
        return
    from mmpretrain.models.utils.clip_generator_helper import CLIP
    large = 'ViT-L-14' in str(teacher.get('weights'))
    # OpenAI ViT-B/16: embed 512, 12 layers of width 768, patch 16;
    # ViT-L/14: embed 768, 24 layers of width 1024, patch 14; text towers
    # of width 512 / 768 (their size does not enter the student's step)
    dims = (768, 224, 24, 1024, 14, 768) if large else \
        (512, 224, 12, 768, 16, 512)
    embed, res, layers, width, patch, text = dims
    clip = CLIP(embed, res, layers, width, patch, context_length=8,
                vocab_size=50, transformer_width=text,
                transformer_heads=text // 64, transformer_layers=1)
    path = osp.join(folder, 'ViT-L-14.pt' if large else 'ViT-B-16.pt')
    torch.save(clip.state_dict(), path)
    teacher['weights'] = path


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def _reset_peak() -> bool:
    """Reset the process's peak resident memory (Linux ``clear_refs``), so
    that the peak of the model build does not count; False where the
    kernel does not allow it (the lifetime peak is read then)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_bytes() -> int:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_step(config: str,
                 num_images: int,
                 size: Optional[Sequence[int]] = None,
                 amp: Optional[bool] = None,
                 with_cp: Optional[bool] = None,
                 cfg_options: Optional[dict] = None) -> dict:
    """One forward and backward pass of a config's model on a synthetic
    batch, in this process; its peak resident memory above the built
    model's. Call it in a fresh process (:func:`measure_in_subprocess`):
    the peak of a process only grows.

    Args:
        config (str): Config file.
        num_images (int): Images in the batch.
        size (Sequence[int], optional): ``(H, W)``; defaults to
            :func:`default_input_size`.
        amp (bool, optional): bfloat16 autocast; defaults to the config's
            (``AmpOptimWrapper``).
        with_cp (bool, optional): Set ``with_cp`` of the backbone and the
            neck; None keeps the config's.
        cfg_options (dict, optional): More overrides (``merge_from_dict``).

    Returns:
        dict: ``peak_bytes`` (above the built model), ``params``,
        ``trainable``, ``images``, ``size``, ``amp``, ``with_cp``,
        ``seconds``.
    """
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmitpn.utils.hosts import register_host_modules
    from mmitpn.utils.mmcv_ops import mmcv_ops_in_float32
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    host = register_host_modules(cfg)
    if with_cp is not None:
        for part in ('backbone', 'neck'):
            if isinstance(cfg.model.get(part), dict) and \
                    cfg.model[part].get('type', '').startswith('mmitpn.'):
                cfg.model[part]['with_cp'] = with_cp
    else:
        with_cp = bool(cfg.model.get('backbone', {}).get('with_cp', False))
    if amp is None:
        amp = cfg.optim_wrapper.get('type') in ('AmpOptimWrapper',
                                                'CPUAmpOptimWrapper')
    size = tuple(size) if size else default_input_size(cfg)
    _strip_checkpoints(cfg.model)
    model_cfg = cfg.model
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor'):
        model_cfg['data_preprocessor'] = cfg.data_preprocessor
    if (model_cfg.get('data_preprocessor') or {}).get('size'):
        # mmseg pads every input to the crop size: pad to the size measured
        model_cfg.data_preprocessor['size'] = size
    with tempfile.TemporaryDirectory() as folder:
        _clip_weights(cfg, folder)
        with DefaultScope.overwrite_default_scope(host):
            from mmengine.model import revert_sync_batchnorm
            from mmengine.registry import MODELS
            model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.train()
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    batch = synthetic_batch(cfg, num_images, size)
    base = _rss_bytes()
    reset = _reset_peak()
    start = time.time()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp), \
            mmcv_ops_in_float32():
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
    loss.backward()
    seconds = time.time() - start
    peak = _peak_bytes()
    return dict(config=config, images=num_images, size=list(size), amp=amp,
                with_cp=with_cp, params=params, trainable=trainable,
                peak_bytes=peak - base, peak_reset=reset,
                seconds=round(seconds, 1))


def measure_in_subprocess(config: str,
                          num_images: int,
                          size: Optional[Sequence[int]] = None,
                          amp: Optional[bool] = None,
                          with_cp: Optional[bool] = None,
                          timeout: int = 3600) -> dict:
    """:func:`measure_step` in a fresh Python process (one thread).

    Args:
        config (str): Config file.
        num_images (int): Images in the batch.
        size (Sequence[int], optional): ``(H, W)``.
        amp (bool, optional): bfloat16 autocast; the config's by default.
        with_cp (bool, optional): ``with_cp`` of backbone and neck.
        timeout (int): Seconds. Defaults to 3600.

    Returns:
        dict: What :func:`measure_step` returns.
    """
    args = dict(config=config, num_images=num_images, size=size, amp=amp,
                with_cp=with_cp)
    code = ('import json, sys, warnings; warnings.simplefilter("ignore"); '
            'from mmitpn.utils.train_memory import measure_step; '
            'print("RESULT " + json.dumps(measure_step('
            '**json.loads(sys.argv[1]))))')
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    res = subprocess.run([sys.executable, '-c', code, json.dumps(args)],
                         capture_output=True, text=True, timeout=timeout,
                         env=env)
    lines = [line for line in res.stdout.splitlines()
             if line.startswith('RESULT ')]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f'Measuring {config} failed: '
                           f'{(res.stderr or res.stdout)[-2000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def estimate_gpu_bytes(small: dict, real: dict, images_per_gpu: int) -> dict:
    """Scale two CPU measurements to ``images_per_gpu`` images on a GPU.

    ``real`` is a :func:`measure_step` result at the config's input size;
    ``small`` one with fewer pixels (fewer images, or a smaller size). The
    memory that grows with the input is taken as linear in the pixels
    between the two (exact for a batch of more images of the real size;
    for a smaller size, a slight overestimate where attention memory is
    quadratic in the tokens): ``per_pixel = (peak_real - peak_small) /
    (pixels_real - pixels_small)``; one real image needs ``per_pixel * H *
    W``, and ``peak_real - per_pixel * pixels_real`` is the input-free part
    of the step (gradients, autocast weight copies, temporaries). A GPU step
    also holds the fp32 weights (4 bytes per parameter, in the measured
    process before the step) and AdamW's two fp32 moments of the trainable
    parameters (8 bytes each, from the first step on).

    Args:
        small (dict): The measurement with fewer pixels.
        real (dict): The measurement at the real input size.
        images_per_gpu (int): The config's images per GPU.

    Returns:
        dict: ``per_image``, ``fixed`` (weights, moments and the
        input-free part of the step) and ``total`` bytes.
    """
    def pixels(r):
        return r['images'] * r['size'][0] * r['size'][1]

    if pixels(real) <= pixels(small):
        raise ValueError('`real` must have more pixels than `small`.')
    per_pixel = max(real['peak_bytes'] - small['peak_bytes'], 0) / (
        pixels(real) - pixels(small))
    per_image = per_pixel * real['size'][0] * real['size'][1]
    step_fixed = max(real['peak_bytes'] - per_pixel * pixels(real), 0)
    fixed = 4 * real['params'] + 8 * real['trainable'] + step_fixed
    return dict(per_image=per_image, fixed=fixed,
                total=fixed + images_per_gpu * per_image)


def images_per_gpu(cfg) -> int:
    """Images one GPU trains on per step: ``train_dataloader.batch_size``.

    Args:
        cfg (mmengine.Config): The config.

    Returns:
        int: The per-GPU batch.
    """
    return int(cfg.train_dataloader.batch_size)


def measurement_points(cfg) -> Tuple[dict, dict]:
    """The two measurements of a config: ``(small, real)`` keyword
    arguments of :func:`measure_step` (``num_images``, ``size``).

    - mmdet: one image at the real size and one at half of each side;
    - mmseg: two crops at the real size and two at half of each side (the
      pooling module's BatchNorm needs two images);
    - mmpretrain: 4 and 8 images (ImageNet crops cost little each).

    Args:
        cfg (mmengine.Config): The config.

    Returns:
        tuple[dict, dict]: Arguments of the small and the real measurement.
    """
    h, w = default_input_size(cfg)
    scope = cfg.get('default_scope')
    if scope == 'mmdet':
        return (dict(num_images=1, size=(h // 2, w // 2)),
                dict(num_images=1, size=(h, w)))
    if scope == 'mmseg':
        return (dict(num_images=2, size=(h // 2, w // 2)),
                dict(num_images=2, size=(h, w)))
    return (dict(num_images=4, size=(h, w)), dict(num_images=8, size=(h, w)))


#: GPU memory the verdicts are for, and the share of it an estimate may
#: fill to count as fitting (the rest: CUDA context, fragmentation, the
#: estimate's error)
GPU_BYTES = 80 * GIB
FITS_SHARE = 0.9


def verdict(total: float, gpu_bytes: float = GPU_BYTES) -> str:
    """``'yes'`` below 90 % of the GPU, ``'no'`` above 110 %, else
    ``'borderline'`` (measure on the GPU).

    Args:
        total (float): Estimated bytes.
        gpu_bytes (float): The GPU's memory. Defaults to 80 GiB.

    Returns:
        str: The verdict.
    """
    if total <= FITS_SHARE * gpu_bytes:
        return 'yes'
    if total > (2 - FITS_SHARE) * gpu_bytes:
        return 'no'
    return 'borderline'


def memory_report(config: str,
                  with_cp: Optional[bool] = None,
                  gpu_bytes: float = GPU_BYTES,
                  timeout: int = 3600,
                  images: Optional[Sequence[int]] = None) -> dict:
    """Measure a config twice (:func:`measurement_points`) in fresh
    processes and estimate its GPU peak at its per-GPU batch.

    Args:
        config (str): Config file.
        with_cp (bool, optional): ``with_cp`` of backbone and neck; None
            keeps the config's.
        gpu_bytes (float): The GPU's memory. Defaults to 80 GiB.
        timeout (int): Seconds per measurement. Defaults to 3600.
        images (Sequence[int], optional): Images of the small and the real
            measurement, both at the real size (more images average out
            the noise of a process's memory); None: the
            :func:`measurement_points` of the config.

    Returns:
        dict: ``config``, ``images_per_gpu``, ``with_cp``, ``amp``, the
        two measurements, the :func:`estimate_gpu_bytes` numbers and the
        ``verdict``.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    small_args, real_args = measurement_points(cfg)
    if images is not None:
        small_args = dict(num_images=images[0], size=real_args['size'])
        real_args = dict(num_images=images[1], size=real_args['size'])
    small = measure_in_subprocess(config, with_cp=with_cp, timeout=timeout,
                                  **small_args)
    real = measure_in_subprocess(config, with_cp=with_cp, timeout=timeout,
                                 **real_args)
    n = images_per_gpu(cfg)
    est = estimate_gpu_bytes(small, real, n)
    return dict(config=config, images_per_gpu=n, with_cp=real['with_cp'],
                amp=real['amp'], small=small, real=real, **est,
                verdict=verdict(est['total'], gpu_bytes))


__all__ = [
    'GPU_BYTES', 'default_input_size', 'estimate_gpu_bytes',
    'images_per_gpu', 'measure_in_subprocess', 'measure_step',
    'measurement_points', 'memory_report', 'synthetic_batch', 'verdict'
]
