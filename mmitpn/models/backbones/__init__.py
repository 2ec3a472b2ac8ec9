from .hivit import HiViTBackbone

__all__ = ['HiViTBackbone']
