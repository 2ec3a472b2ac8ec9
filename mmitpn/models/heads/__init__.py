from .clip_distill_head import CLIPDistillHead
from .feature_head import ITPNFeatureHead
from .pixel_head import ITPNPixelHead

__all__ = ['CLIPDistillHead', 'ITPNFeatureHead', 'ITPNPixelHead']
