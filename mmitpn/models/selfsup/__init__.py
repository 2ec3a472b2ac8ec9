from .itpn_clip import ITPNCLIP
from .itpn_mim import ITPNMIM, RandomMasks, Reconstruction

__all__ = ['ITPNCLIP', 'ITPNMIM', 'RandomMasks', 'Reconstruction']
