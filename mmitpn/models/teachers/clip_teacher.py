"""A frozen CLIP image encoder used as the iTPN teacher."""
import os.path as osp
import warnings
import zipfile
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmitpn.registry import MODELS
from ..layers import resize_pos_embed

OPENAI_CLIP_MEAN = (122.770938, 116.7460125, 104.09373615)
OPENAI_CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


#: Keys ``build_clip_model`` reads to size the model; a file without them
#: is not an OpenAI CLIP ViT.
REQUIRED_KEYS = ('visual.proj', 'visual.conv1.weight',
                 'visual.positional_embedding', 'text_projection',
                 'positional_embedding', 'token_embedding.weight',
                 'ln_final.weight')


def _is_torchscript(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``code/``),
    as OpenAI released its CLIP weights, rather than a ``torch.save``
    file."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(
            n.endswith('/constants.pkl') or '/code/' in n
            for n in zf.namelist())


def load_clip_state_dict(path: str) -> dict:
    """Read OpenAI CLIP ViT weights from a local file.

    Accepts the TorchScript archive OpenAI releases (``ViT-B-16.pt``,
    ``ViT-L-14.pt``) and a plain state dict saved with ``torch.save``
    (optionally under a ``'state_dict'`` key). Plain files are read with
    ``weights_only=True``. Nothing is downloaded.

    Args:
        path (str): Local path of the weights.

    Returns:
        dict: The CLIP state dict (OpenAI key names).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: The file cannot be read as a checkpoint, or it is not
            an OpenAI CLIP ViT (e.g. a ResNet CLIP or another model).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'CLIP weights not found at {path!r}. mmitpn never downloads at '
            f'run time: fetch OpenAI\'s ViT-B-16.pt (or ViT-L-14.pt) once, '
            f'then set model.teacher.weights to its local path.')
    try:
        if _is_torchscript(path):
            with warnings.catch_warnings():
                # the archive format OpenAI ships; nothing else reads it
                warnings.simplefilter('ignore', FutureWarning)
                sd = torch.jit.load(path, map_location='cpu').state_dict()
        else:
            sd = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise ValueError(f'{path!r} cannot be read as CLIP weights (a '
                         f'TorchScript archive or a torch.save state dict): '
                         f'{type(e).__name__}: {e}') from e
    if isinstance(sd, dict) and 'state_dict' in sd:
        sd = sd['state_dict']
    if not isinstance(sd, dict):
        raise ValueError(f'{path!r} holds a {type(sd).__name__}, not a '
                         f'CLIP state dict.')
    missing = [k for k in REQUIRED_KEYS if k not in sd]
    if missing:
        raise ValueError(f'{path!r} is not an OpenAI CLIP ViT checkpoint '
                         f'(missing {missing}).')
    return dict(sd)


def _persistent_state(module: nn.Module):
    """``(name, tensor)`` of everything ``module.state_dict()`` holds
    without hooks: parameters and persistent buffers of every submodule."""
    for prefix, m in module.named_modules():
        prefix = prefix + '.' if prefix else ''
        for name, p in m._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in m._buffers.items():
            if b is not None and name not in m._non_persistent_buffers_set:
                yield prefix + name, b


def _drop_from_state_dict(module, state_dict, prefix, local_metadata) -> None:
    """State-dict post-hook of :class:`CLIPTeacher`: its weights come from
    the CLIP file, never from a checkpoint of the model it teaches."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]


def _keep_own_weights(module, state_dict, prefix, *args) -> None:
    """Load-state-dict pre-hook of :class:`CLIPTeacher`: loading a
    checkpoint leaves the teacher as its CLIP file made it (its keys are
    filled with its own tensors, so a strict load of a student checkpoint
    finds nothing missing)."""
    for name, tensor in _persistent_state(module):
        state_dict[prefix + name] = tensor.detach()


@MODELS.register_module()
class CLIPTeacher(nn.Module):
    """Frozen OpenAI CLIP ViT whose projected patch tokens are the targets
    of the CLIP-target iTPN variant.

    The model is mmpretrain's CLIP (``build_clip_model``) built from a local
    file; only the image tower is kept. Targets are all patch tokens (CLS
    dropped) after ``ln_post``, times the visual projection. Images arrive
    normalised for the student and are re-normalised with CLIP's statistics
    and resized to the teacher's input resolution ``img_size`` when they
    differ.

    The teacher is frozen (``requires_grad=False``, always in eval mode)
    and stays out of state dicts: as a registered submodule of the model it
    teaches it moves with ``.to()``, but checkpoints of that model hold the
    student only (saving drops the teacher's keys, loading leaves the
    teacher as the CLIP file made it), since every run rebuilds it from
    its local file.

    The official CLIP-L/14 teacher (``itpn_clip``) runs at 196 px: CLIP's
    16x16 position embedding (224 / 14) is interpolated to 14x14, so the
    teacher gives 196 tokens, the grid of a 224 student. ``img_size=196``
    does the same: the patch part of the table is resized once at build
    with the official rule (bicubic, ``scale_factor = (g + 0.1) / g0``, as
    the official CLIP ``interpolate_pos_encoding``), the class-token entry
    is kept.

    Args:
        weights (str): Local path of the CLIP weights: OpenAI's
            TorchScript archive or a ``torch.save`` state dict (see
            :func:`load_clip_state_dict`). Never downloaded.
        student_mean (Sequence[float]): Mean the student's images were
            normalised with (0-255 scale). Defaults to ImageNet's.
        student_std (Sequence[float]): Their std. Defaults to ImageNet's.
        img_size (int, optional): Input resolution of the teacher, a
            multiple of its patch size; its position embedding is
            interpolated to the ``img_size / patch`` grid. The official
            CLIP-L/14 teacher uses 196 (14x14 tokens). Defaults to None
            (CLIP's own resolution, 224 for the OpenAI ViT-B/16, ViT-L/14).
    """

    def __init__(self,
                 weights: str,
                 student_mean: Sequence[float] = (123.675, 116.28, 103.53),
                 student_std: Sequence[float] = (58.395, 57.12, 57.375),
                 img_size: Optional[int] = None):
        super().__init__()
        from mmpretrain.models.utils import build_clip_model
        state_dict = load_clip_state_dict(weights)
        given = set(state_dict)
        clip = build_clip_model(state_dict, False)
        # build_clip_model loads non-strictly: a truncated file would
        # leave part of the image tower randomly initialised
        missing = sorted(f'visual.{k}' for k in clip.visual.state_dict()
                         if f'visual.{k}' not in given)
        if missing:
            raise ValueError(f'{weights!r} lacks image-tower weights of the '
                             f'CLIP it describes: {missing[:5]}'
                             f'{" ..." if len(missing) > 5 else ""}')
        self.visual = clip.visual.requires_grad_(False).eval()
        self.embed_dims = self.visual.output_dim
        if img_size is not None and img_size != self.visual.input_resolution:
            self._set_input_resolution(int(img_size))
        self.input_resolution = self.visual.input_resolution
        s_mean = torch.tensor(student_mean).view(1, 3, 1, 1)
        s_std = torch.tensor(student_std).view(1, 3, 1, 1)
        c_mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
        c_std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
        # x_clip = x_student * scale + shift
        self.register_buffer('scale', s_std / c_std, persistent=False)
        self.register_buffer(
            'shift', (s_mean - c_mean) / c_std, persistent=False)
        self.eval()
        self.register_state_dict_post_hook(_drop_from_state_dict)
        self.register_load_state_dict_pre_hook(_keep_own_weights)

    def _set_input_resolution(self, img_size: int) -> None:
        """Interpolate CLIP's position embedding for ``img_size`` inputs."""
        patch = self.visual.conv1.kernel_size[0]
        if img_size <= 0 or img_size % patch:
            raise ValueError(f'CLIPTeacher img_size={img_size} is not a '
                             f'positive multiple of the CLIP patch size '
                             f'{patch}; e.g. 196 for ViT-L/14 (14x14 tokens).')
        table = self.visual.positional_embedding.data  # (1 + g0 * g0, C)
        g0 = int(round((table.shape[0] - 1)**0.5))
        g = img_size // patch
        patches = resize_pos_embed(table[1:].unsqueeze(0), (g0, g0), (g, g))
        self.visual.positional_embedding = nn.Parameter(
            torch.cat([table[:1], patches[0]]), requires_grad=False)
        self.visual.input_resolution = img_size

    def train(self, mode: bool = True):
        """Stay in eval mode whatever ``mode`` is (the teacher is frozen).

        Args:
            mode (bool): Ignored. Defaults to True.
        """
        return super().train(False)

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Patch-token targets.

        Args:
            img (torch.Tensor): ``(B, 3, H, W)`` images normalised with
                ``student_mean`` / ``student_std`` (RGB).

        Returns:
            torch.Tensor: ``(B, N, E)`` float32 tokens, CLS dropped, after
            ``ln_post`` and the visual projection (not yet normalised).
        """
        x = img * self.scale + self.shift
        if x.shape[-1] != self.input_resolution or \
                x.shape[-2] != self.input_resolution:
            x = F.interpolate(
                x, size=(self.input_resolution, self.input_resolution),
                mode='bicubic', align_corners=False)
        tokens = self.visual(x.to(self.visual.conv1.weight.dtype))[0]
        return tokens[:, 1:].float()
