"""A frozen CLIP image encoder used as the iTPN teacher."""
import os.path as osp
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmitpn.registry import MODELS

OPENAI_CLIP_MEAN = (122.770938, 116.7460125, 104.09373615)
OPENAI_CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


def load_clip_state_dict(path: str) -> dict:
    """Read OpenAI CLIP weights (a TorchScript archive as released, or a
    plain state dict) from a local file."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'CLIP weights not found at {path!r}. mmitpn never downloads at '
            f'run time: fetch OpenAI\'s ViT-B-16.pt (or ViT-L-14.pt) once, '
            f'then set model.teacher.weights to its local path.')
    try:
        return torch.jit.load(path, map_location='cpu').state_dict()
    except RuntimeError:
        pass
    sd = torch.load(path, map_location='cpu', weights_only=False)
    if isinstance(sd, dict) and 'state_dict' in sd:
        sd = sd['state_dict']
    if not isinstance(sd, dict) or 'visual.proj' not in sd:
        raise ValueError(f'{path!r} is not an OpenAI CLIP ViT checkpoint '
                         f'(no visual.proj).')
    return sd


@MODELS.register_module()
class CLIPTeacher(nn.Module):
    """Frozen OpenAI CLIP ViT whose projected patch tokens are the targets
    of the CLIP-target iTPN variant.

    The model is mmpretrain's CLIP (``build_clip_model``) built from a local
    file; only the image tower is kept. Targets are all patch tokens (CLS
    dropped) after ``ln_post``, times the visual projection. Images arrive
    normalised for the student and are re-normalised with CLIP's statistics
    and resized to CLIP's input resolution when it differs (ViT-L/14 at 196
    gives the same 14x14 grid as a 224 student).

    Args:
        weights (str): Local path of the CLIP weights.
        student_mean (Sequence[float]): Mean the student's images were
            normalised with (0-255 scale). Defaults to ImageNet's.
        student_std (Sequence[float]): Their std. Defaults to ImageNet's.
    """

    def __init__(self,
                 weights: str,
                 student_mean: Sequence[float] = (123.675, 116.28, 103.53),
                 student_std: Sequence[float] = (58.395, 57.12, 57.375)):
        super().__init__()
        from mmpretrain.models.utils import build_clip_model
        clip = build_clip_model(load_clip_state_dict(weights), False)
        self.visual = clip.visual.requires_grad_(False).eval()
        self.embed_dims = self.visual.output_dim
        self.input_resolution = self.visual.input_resolution
        s_mean = torch.tensor(student_mean).view(1, 3, 1, 1)
        s_std = torch.tensor(student_std).view(1, 3, 1, 1)
        c_mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
        c_std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
        # x_clip = x_student * scale + shift
        self.register_buffer('scale', s_std / c_std, persistent=False)
        self.register_buffer(
            'shift', (s_mean - c_mean) / c_std, persistent=False)

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """``(B, N, E)`` patch-token targets for student-normalised
        images."""
        x = img * self.scale + self.shift
        if x.shape[-1] != self.input_resolution or \
                x.shape[-2] != self.input_resolution:
            x = F.interpolate(
                x, size=(self.input_resolution, self.input_resolution),
                mode='bicubic', align_corners=False)
        tokens = self.visual(x.to(self.visual.conv1.weight.dtype))[0]
        return tokens[:, 1:].float()
