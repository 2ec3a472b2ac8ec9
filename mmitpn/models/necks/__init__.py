from .itpn_pyramid import ITPNPyramid

__all__ = ['ITPNPyramid']
