"""The embedded demo data of ``mmitpn`` (deterministic, offline).

Three small synthetic data sets that let the README demos and the tests run
on a 2-core CPU in minutes:

* ``pretrain/``: an ImageNet-style folder tree for self-supervised
  pre-training (``pretrain/train/<texture>/*.png``, mmpretrain
  ``CustomDataset(data_prefix='train', with_label=False)``).
* ``coco/``: a COCO-format instance segmentation set of three shape
  categories (``circle``, ``square``, ``triangle``; ids 1, 2, 3) with
  polygon masks computed from the exact shape geometry.
* ``ade/``: an ADE20K-style semantic segmentation set (``images/`` +
  ``annotations/`` with uint8 labels, 0 = background, 1..3 = the shapes;
  meant to be read with ``reduce_zero_label=True``).

Every image is drawn from its own ``numpy.random.Generator`` seeded by
``(seed, part, split, index)``, so the output is a pure function of the seed
(and of the count scale). The data set is written into ``<out>.tmp-<pid>``
and renamed into place once complete; ``manifest.json`` is written last, and
a call whose manifest matches the requested settings returns at once.

:func:`make_demo_data` is the entry point; ``tools/data/make_demo_data.py``
is its command line.
"""
import json
import math
import os
import os.path as osp
import shutil
import time

import cv2
import numpy as np

GENERATOR_VERSION = 1

# ----------------------------------------------------------------- settings
PRETRAIN_SIZE = 96  # square side of the pre-training images
PRETRAIN_NUM = 512
COCO_SIZE = 160  # square side of the instance segmentation images
COCO_NUM = dict(train=160, val=40)
ADE_SIZE = 128  # square side of the semantic segmentation images
ADE_NUM = dict(training=120, validation=30)

CLASSES = ('circle', 'square', 'triangle')  # COCO ids 1, 2, 3; ADE labels
TEXTURES = ('stripes', 'checker', 'noise', 'rings')  # pretrain folder names
COCO_OBJ_SIZE = (24, 70)  # extent of a COCO object in pixels
ADE_OBJ_SIZE = (20, 60)
PRETRAIN_OBJ_SIZE = (12, 56)
MAX_BOX_IOU = 0.1  # COCO placements overlapping more than this are rejected
MASK_GAP = 2  # COCO masks keep at least this many pixels apart
JPEG_QUALITY = 92
CIRCLE_VERTICES = 64

_PART_IDS = dict(pretrain=1, coco=2, ade=3)
_SPLIT_IDS = dict(train=0, val=1, training=2, validation=3)


# ------------------------------------------------------------------ drawing
def _rng(seed, part, split, index):
    """Generator of one image.

    Args:
        seed (int): Global seed of the data set.
        part (str): ``'pretrain'``, ``'coco'`` or ``'ade'``.
        split (str): Split name (a key of ``_SPLIT_IDS``).
        index (int): Index of the image in its split.

    Returns:
        numpy.random.Generator: independent of every other image's.
    """
    return np.random.default_rng(
        [int(seed), _PART_IDS[part], _SPLIT_IDS[split], int(index)])


def _smooth_noise(rng, size, cells):
    """Band-limited noise in [-1, 1]: a coarse grid of random values,
    upsampled bicubically.

    Args:
        rng (numpy.random.Generator): Source of randomness.
        size (int): Side of the square output.
        cells (int): Side of the coarse grid (higher: finer detail).

    Returns:
        numpy.ndarray: float32 array of shape ``(size, size)``.
    """
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    out = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, -1, 1)


def _texture(rng, size, kind):
    """A periodic or smooth texture pattern in [-1, 1].

    Args:
        rng (numpy.random.Generator): Source of randomness.
        size (int): Side of the square output.
        kind (str): One of :data:`TEXTURES`.

    Returns:
        numpy.ndarray: float32 array of shape ``(size, size)``.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(6, 28) * size / 96
    phase = rng.uniform(0, 2 * math.pi)
    if kind == 'stripes':
        u = xx * math.cos(theta) + yy * math.sin(theta)
        return np.sin(2 * math.pi * u / period + phase)
    if kind == 'checker':
        u = xx * math.cos(theta) + yy * math.sin(theta)
        v = -xx * math.sin(theta) + yy * math.cos(theta)
        c = np.sin(2 * math.pi * u / period) * np.sin(
            2 * math.pi * v / period + phase)
        return np.tanh(3 * c)  # soft-edged squares
    if kind == 'rings':
        cx, cy = rng.uniform(-0.2, 1.2, 2) * size
        r = np.sqrt((xx - cx)**2 + (yy - cy)**2)
        return np.sin(2 * math.pi * r / period + phase)
    if kind == 'noise':
        cells = int(rng.integers(4, 14))
        return _smooth_noise(rng, size, cells)
    raise ValueError(f'unknown texture {kind!r}')


def _background(rng, size, kind, contrast):
    """Textured background: a smooth two-colour gradient, a texture of
    random frequency and colour, and low-frequency noise.

    Args:
        rng (numpy.random.Generator): Source of randomness.
        size (int): Side of the square image.
        kind (str): Texture kind, one of :data:`TEXTURES`.
        contrast (float): Amplitude of the texture in grey levels.

    Returns:
        numpy.ndarray: float32 RGB image of shape ``(size, size, 3)`` in
        [0, 255].
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    theta = rng.uniform(0, 2 * math.pi)
    t = (xx * math.cos(theta) + yy * math.sin(theta))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    # muted colours, so that saturated objects stand out
    c0, c1 = rng.uniform(70, 185, (2, 3)).astype(np.float32)
    img = c0 + t[..., None] * (c1 - c0)
    tex_colour = rng.uniform(-1, 1, 3).astype(np.float32)
    tex_colour /= max(float(np.abs(tex_colour).max()), 1e-6)
    img += contrast * _texture(rng, size, kind)[..., None] * tex_colour
    img += 12 * _smooth_noise(rng, size, int(rng.integers(3, 8)))[..., None]
    return img


def _shape_polygon(rng, kind, size, extent):
    """Vertices of one shape at a random place, size and rotation.

    Args:
        rng (numpy.random.Generator): Source of randomness.
        kind (str): ``'circle'``, ``'square'``, ``'triangle'``,
            ``'rectangle'`` or ``'ellipse'``.
        size (int): Side of the square image the shape must fit in.
        extent (tuple[int, int]): Range of the shape's diameter in pixels.

    Returns:
        numpy.ndarray: float64 array of shape ``(N, 2)`` of ``(x, y)``
        vertices in COCO's continuous pixel frame (pixel ``i`` covers
        ``[i, i + 1)``), inside ``[0, size]``.
    """
    d = rng.uniform(*extent)
    rot = rng.uniform(0, 2 * math.pi)
    if kind in ('circle', 'ellipse'):
        a = np.linspace(0, 2 * math.pi, CIRCLE_VERTICES, endpoint=False)
        rx = ry = d / 2
        if kind == 'ellipse':
            ry = rx * rng.uniform(0.35, 0.8)
        pts = np.stack([rx * np.cos(a), ry * np.sin(a)], 1)
    elif kind in ('square', 'rectangle'):
        rot = rng.uniform(-math.pi / 8, math.pi / 8)
        w = d / math.sqrt(2) * 1.15  # the diagonal of the square is ~d
        h = w if kind == 'square' else w * rng.uniform(0.35, 0.75)
        pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    elif kind == 'triangle':
        r = d / 2 * 1.1  # circumradius
        a = np.array([-math.pi / 2, math.pi / 6, 5 * math.pi / 6])
        pts = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    else:
        raise ValueError(f'unknown shape {kind!r}')
    c, s = math.cos(rot), math.sin(rot)
    pts = pts @ np.array([[c, s], [-s, c]])
    lo, hi = pts.min(0), pts.max(0)
    margin = 1.0
    cx = rng.uniform(margin - lo[0], size - margin - hi[0])
    cy = rng.uniform(margin - lo[1], size - margin - hi[1])
    return pts + np.array([cx, cy])


def _coverage(poly, size, ss=1):
    """Fraction of every pixel inside a convex polygon, by sampling ``ss`` x
    ``ss`` points per pixel (``ss=1``: the pixel centre, as COCO's
    rasteriser does).

    Args:
        poly (numpy.ndarray): ``(N, 2)`` vertices of a convex polygon in
            COCO's continuous pixel frame (pixel ``i`` covers ``[i, i + 1)``,
            its centre is ``i + 0.5``).
        size (int): Side of the square output.
        ss (int): Samples per pixel side (4 gives anti-aliased edges).

    Returns:
        numpy.ndarray: float32 ``(size, size)`` coverage in [0, 1].
    """
    out = np.zeros((size, size), np.float32)
    x0, y0 = np.clip(np.floor(poly.min(0)).astype(int), 0, size)
    x1, y1 = np.clip(np.ceil(poly.max(0)).astype(int), 0, size)
    if x1 <= x0 or y1 <= y0:
        return out
    sub = (np.arange(ss) + 0.5) / ss
    xs = (np.arange(x0, x1)[:, None] + sub).reshape(-1)
    ys = (np.arange(y0, y1)[:, None] + sub).reshape(-1)
    a, b = poly, np.roll(poly, -1, 0)
    # orient the polygon so that its interior lies left of every edge
    sign = 1.0 if np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1]) > 0 else -1.0
    inside = np.ones((len(ys), len(xs)), bool)
    for (ax, ay), (bx, by) in zip(a, b):
        dx, dy = sign * (bx - ax), sign * (by - ay)
        inside &= (dx * (ys - ay))[:, None] - (dy * (xs - ax))[None] >= 0
    cov = inside.reshape(y1 - y0, ss, x1 - x0, ss).mean((1, 3))
    out[y0:y1, x0:x1] = cov
    return out


def _mask(poly, size):
    """Binary mask of a convex polygon: the pixels whose centre is inside.

    Args:
        poly (numpy.ndarray): ``(N, 2)`` vertices in COCO's pixel frame.
        size (int): Side of the square mask.

    Returns:
        numpy.ndarray: uint8 ``(size, size)`` mask of 0 and 1.
    """
    return (_coverage(poly, size) > 0.5).astype(np.uint8)


def _object_colour(rng, bg_mean):
    """A saturated colour far from the local background colour.

    Args:
        rng (numpy.random.Generator): Source of randomness.
        bg_mean (numpy.ndarray): Mean RGB of the background under the object.

    Returns:
        numpy.ndarray: float32 RGB colour.
    """
    best, best_d = None, -1.0
    for _ in range(12):
        col = rng.uniform(0, 255, 3)
        col[rng.integers(3)] = rng.choice([rng.uniform(0, 40),
                                           rng.uniform(215, 255)])
        d = float(np.linalg.norm(col - bg_mean))
        if d > best_d:
            best, best_d = col, d
        if d > 140:
            break
    return best.astype(np.float32)


def _paint(img, poly, rng):
    """Paint a shape with a shaded saturated colour and a thin dark or light
    outline, anti-aliased.

    Args:
        img (numpy.ndarray): float32 ``(H, W, 3)`` image, modified in place.
        poly (numpy.ndarray): ``(N, 2)`` vertices in COCO's pixel frame.
        rng (numpy.random.Generator): Source of randomness.
    """
    size = img.shape[0]
    m = _mask(poly, size).astype(bool)
    bg_mean = img[m].mean(0) if m.any() else img.reshape(-1, 3).mean(0)
    col = _object_colour(rng, bg_mean)
    # soft linear shading across the object
    layer = _coverage(poly, size, ss=4)[..., None]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    c = poly.mean(0)
    shade = ((xx - c[0]) * math.cos(theta) + (yy - c[1]) * math.sin(theta))
    shade = 1 + 0.006 * rng.uniform(0.5, 1.5) * shade
    fill = np.clip(col * shade[..., None], 0, 255)
    img *= 1 - layer
    img += layer * fill
    # thin outline on the boundary (inside the polygon)
    edge = np.zeros((size, size), np.float32)
    shift = 4
    pts = np.round((poly - 0.5) * (1 << shift)).astype(np.int32)
    cv2.polylines(edge, [pts], True, 1.0, 1, cv2.LINE_AA, shift)
    edge = (edge * layer[..., 0])[..., None] * 0.6
    tone = 20.0 if col.mean() > 110 else 235.0
    img *= 1 - edge
    img += edge * tone


def _finish(img, rng):
    """Add mild sensor noise and quantise.

    Args:
        img (numpy.ndarray): float32 RGB image in [0, 255].
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        numpy.ndarray: uint8 **BGR** image for ``cv2.imwrite``.
    """
    img = img + rng.normal(0, 3, img.shape).astype(np.float32)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1])


def _place(rng, kinds, size, extent, max_iou=None, gap=None, tries=60):
    """Place shapes at random, rejecting overlapping placements.

    Args:
        rng (numpy.random.Generator): Source of randomness.
        kinds (list[str]): Shapes to place, in drawing order.
        size (int): Side of the square image.
        extent (tuple[int, int]): Range of a shape's diameter in pixels.
        max_iou (float, optional): Reject a placement whose box overlaps an
            earlier one's by more than this IoU. ``None``: no check.
        gap (int, optional): Reject a placement whose mask comes within this
            many pixels of an earlier mask. ``None``: no check.
        tries (int): Placement attempts per shape before dropping it.

    Returns:
        list[tuple[str, numpy.ndarray]]: ``(kind, polygon)`` of the shapes
        placed (at least the first one).
    """
    placed, boxes = [], []
    occupied = np.zeros((size, size), np.uint8)
    for kind in kinds:
        for _ in range(tries):
            poly = _shape_polygon(rng, kind, size, extent)
            box = np.concatenate([poly.min(0), poly.max(0)])
            if max_iou is not None and any(
                    _iou(box, b) > max_iou for b in boxes):
                continue
            if gap is not None:
                m = _mask(poly, size)
                if gap > 0:
                    m = cv2.dilate(m, np.ones((2 * gap + 1, ) * 2, np.uint8))
                if (m & occupied).any():
                    continue
                occupied |= _mask(poly, size)
            placed.append((kind, poly))
            boxes.append(box)
            break
    return placed


def _iou(a, b):
    """IoU of two ``(x1, y1, x2, y2)`` boxes.

    Args:
        a (numpy.ndarray): First box.
        b (numpy.ndarray): Second box.

    Returns:
        float: Intersection over union.
    """
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) *
             (b[3] - b[1]) - inter)
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------- data sets
def _counts(scale):
    """Number of images of every split.

    Args:
        scale (float): Multiplier of the default counts (``1.0``: full).

    Returns:
        dict: ``{'pretrain/train': n, 'coco/train': n, ...}``.
    """

    def n(x):
        """Scaled count (at least 1) of a default count ``x`` (int)."""
        return max(1, int(round(x * scale)))

    counts = {'pretrain/train': n(PRETRAIN_NUM)}
    counts.update({f'coco/{k}': n(v) for k, v in COCO_NUM.items()})
    counts.update({f'ade/{k}': n(v) for k, v in ADE_NUM.items()})
    return counts


def _settings(seed, scale):
    """The settings a manifest must match to be up to date.

    Args:
        seed (int): Global seed.
        scale (float): Count multiplier.

    Returns:
        dict: Settings (JSON-serialisable).
    """
    return dict(
        generator_version=GENERATOR_VERSION,
        seed=int(seed),
        scale=float(scale),
        counts=_counts(scale),
        sizes=dict(pretrain=PRETRAIN_SIZE, coco=COCO_SIZE, ade=ADE_SIZE),
        classes=list(CLASSES))


def _write_pretrain(root, seed, num):
    """Write ``pretrain/train/<texture>/<index>.png``.

    Args:
        root (str): Data set root (the temporary directory).
        seed (int): Global seed.
        num (int): Number of images.

    Returns:
        int: Number of images written.
    """
    shapes = ('circle', 'rectangle', 'triangle', 'ellipse')
    for kind in TEXTURES:
        os.makedirs(osp.join(root, 'pretrain', 'train', kind), exist_ok=True)
    for i in range(num):
        rng = _rng(seed, 'pretrain', 'train', i)
        kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
        img = _background(rng, PRETRAIN_SIZE, kind, rng.uniform(20, 55))
        n_obj = int(rng.integers(1, 5))
        kinds = [shapes[int(k)] for k in rng.integers(len(shapes), size=n_obj)]
        for _, poly in _place(rng, kinds, PRETRAIN_SIZE, PRETRAIN_OBJ_SIZE):
            _paint(img, poly, rng)
        cv2.imwrite(
            osp.join(root, 'pretrain', 'train', kind, f'{i:05d}.png'),
            _finish(img, rng), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    return num


def _write_coco(root, seed, counts):
    """Write ``coco/{train,val}/*.jpg`` and
    ``coco/annotations/instances_{train,val}.json``.

    Args:
        root (str): Data set root (the temporary directory).
        seed (int): Global seed.
        counts (dict): ``{'train': n, 'val': n}`` image counts.

    Returns:
        dict: Number of instances of every split.
    """
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(CLASSES)
    ]
    os.makedirs(osp.join(root, 'coco', 'annotations'), exist_ok=True)
    n_inst = {}
    for split, num in counts.items():
        os.makedirs(osp.join(root, 'coco', split), exist_ok=True)
        images, annotations = [], []
        for i in range(num):
            rng = _rng(seed, 'coco', split, i)
            kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
            img = _background(rng, COCO_SIZE, kind, rng.uniform(15, 35))
            n_obj = int(rng.integers(1, 5))
            kinds = [CLASSES[int(k)] for k in rng.integers(3, size=n_obj)]
            objs = _place(rng, kinds, COCO_SIZE, COCO_OBJ_SIZE,
                          max_iou=MAX_BOX_IOU, gap=MASK_GAP)
            file_name = f'{i:05d}.jpg'
            image_id = i + 1
            for name, poly in objs:
                _paint(img, poly, rng)
                mask = _mask(poly, COCO_SIZE)
                ys, xs = np.nonzero(mask)
                x1, y1 = poly.min(0)
                x2, y2 = poly.max(0)
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=CLASSES.index(name) + 1,
                        segmentation=[[
                            round(float(v), 2) for v in poly.reshape(-1)
                        ]],
                        area=int(mask.sum()),
                        bbox=[
                            round(float(x1), 2),
                            round(float(y1), 2),
                            round(float(x2 - x1), 2),
                            round(float(y2 - y1), 2)
                        ],
                        iscrowd=0))
                assert len(xs) > 0
            cv2.imwrite(
                osp.join(root, 'coco', split, file_name), _finish(img, rng),
                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            images.append(
                dict(
                    id=image_id,
                    file_name=file_name,
                    width=COCO_SIZE,
                    height=COCO_SIZE))
        ann = dict(
            info=dict(
                description='mmitpn synthetic demo shapes',
                version=str(GENERATOR_VERSION)),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=categories)
        with open(
                osp.join(root, 'coco', 'annotations',
                         f'instances_{split}.json'), 'w') as f:
            json.dump(ann, f, separators=(',', ':'))
        n_inst[split] = len(annotations)
    return n_inst


def _write_ade(root, seed, counts):
    """Write ``ade/images/<split>/*.jpg``, ``ade/annotations/<split>/*.png``
    and ``ade/classes.txt``.

    Args:
        root (str): Data set root (the temporary directory).
        seed (int): Global seed.
        counts (dict): ``{'training': n, 'validation': n}`` image counts.

    Returns:
        int: Number of images written.
    """
    total = 0
    for split, num in counts.items():
        img_dir = osp.join(root, 'ade', 'images', split)
        ann_dir = osp.join(root, 'ade', 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(num):
            rng = _rng(seed, 'ade', split, i)
            kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
            img = _background(rng, ADE_SIZE, kind, rng.uniform(15, 35))
            label = np.zeros((ADE_SIZE, ADE_SIZE), np.uint8)
            n_obj = int(rng.integers(1, 5))
            kinds = [CLASSES[int(k)] for k in rng.integers(3, size=n_obj)]
            # later shapes occlude earlier ones in both image and label
            for name, poly in _place(rng, kinds, ADE_SIZE, ADE_OBJ_SIZE,
                                     max_iou=0.3):
                _paint(img, poly, rng)
                label[_mask(poly, ADE_SIZE) > 0] = CLASSES.index(name) + 1
            stem = f'ADE_{split[:5]}_{i:08d}'
            cv2.imwrite(
                osp.join(img_dir, stem + '.jpg'), _finish(img, rng),
                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            cv2.imwrite(osp.join(ann_dir, stem + '.png'), label)
            total += 1
    with open(osp.join(root, 'ade', 'classes.txt'), 'w') as f:
        f.write('\n'.join(CLASSES) + '\n')
    return total


def _read_manifest(out_dir):
    """The manifest of ``out_dir``, or ``None`` if absent or unreadable.

    Args:
        out_dir (str): Data set root.

    Returns:
        dict | None: The manifest.
    """
    try:
        with open(osp.join(out_dir, 'manifest.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _up_to_date(manifest, settings):
    """Whether a manifest was written with the requested settings.

    Args:
        manifest (dict | None): Manifest found on disk.
        settings (dict): Requested settings (see :func:`_settings`).

    Returns:
        bool: ``True`` if every setting matches.
    """
    return manifest is not None and all(
        manifest.get(k) == v for k, v in settings.items())


def _disk_size(path):
    """Total size in bytes of the files under ``path``.

    Args:
        path (str): Directory.

    Returns:
        int: Bytes.
    """
    return sum(
        osp.getsize(osp.join(d, f)) for d, _, files in os.walk(path)
        for f in files)


def make_demo_data(out_dir='data/demo', seed=0, force=False, scale=1.0,
                   verbose=False):
    """Generate the demo data sets into ``out_dir`` (if not up to date).

    Args:
        out_dir (str): Destination directory (created; its parent too).
        seed (int): Global seed; the output is a pure function of it (and of
            ``scale``). Defaults to 0.
        force (bool): Regenerate even if ``out_dir`` holds an up-to-date
            data set. Defaults to False.
        scale (float): Multiplier of the default image counts (e.g. ``0.05``
            for a quick test); each image only depends on its index, so a
            smaller set is a prefix of the full one. Defaults to 1.0.
        verbose (bool): Print a summary. Defaults to False.

    Returns:
        dict: The manifest (settings, instance counts, bytes on disk,
        seconds taken, and ``'up_to_date': True`` when nothing was written).
    """
    t0 = time.time()
    if scale <= 0:
        raise ValueError(f'scale must be positive, got {scale}')
    out_dir = osp.abspath(out_dir)
    settings = _settings(seed, scale)
    manifest = _read_manifest(out_dir)
    if not force and _up_to_date(manifest, settings):
        if verbose:
            print(f'{out_dir}: up to date (seed {seed}, scale {scale})')
        return dict(manifest, up_to_date=True)

    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = f'{out_dir}.tmp-{os.getpid()}'
    if osp.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    try:
        counts = settings['counts']
        _write_pretrain(tmp, seed, counts['pretrain/train'])
        n_inst = _write_coco(
            tmp, seed, {s: counts[f'coco/{s}']
                        for s in COCO_NUM})
        _write_ade(tmp, seed, {s: counts[f'ade/{s}'] for s in ADE_NUM})
        manifest = dict(
            settings,
            coco_instances=n_inst,
            bytes=_disk_size(tmp),
            seconds=round(time.time() - t0, 2))
        with open(osp.join(tmp, 'manifest.json'), 'w') as f:
            json.dump(manifest, f, indent=2)
            f.write('\n')
        # swap into place: the old set (if any) is moved aside first, so
        # ``out_dir`` is never a partial data set
        old = None
        if osp.lexists(out_dir):
            old = f'{out_dir}.old-{os.getpid()}'
            os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            # another process won the race; keep its data if it matches
            if _up_to_date(_read_manifest(out_dir), settings):
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if osp.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        c = settings['counts']
        print(f'demo data written to {out_dir} in {time.time() - t0:.1f} s '
              f'({manifest["bytes"] / 2**20:.1f} MiB, seed {seed})\n'
              f'  pretrain: {c["pretrain/train"]} images '
              f'{PRETRAIN_SIZE}x{PRETRAIN_SIZE} (pretrain/train/<texture>/)'
              f'\n  coco:     {c["coco/train"]} train / {c["coco/val"]} val '
              f'images {COCO_SIZE}x{COCO_SIZE}, {n_inst["train"]} / '
              f'{n_inst["val"]} instances of {", ".join(CLASSES)}\n'
              f'  ade:      {c["ade/training"]} training / '
              f'{c["ade/validation"]} validation images {ADE_SIZE}x'
              f'{ADE_SIZE}, labels 0 (ignored) + 1..{len(CLASSES)}')
    return dict(manifest, up_to_date=False)
