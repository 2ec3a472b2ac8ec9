from .itpn_clip import ITPNCLIP
from .itpn_mim import ITPNMIM

__all__ = ['ITPNCLIP', 'ITPNMIM']
