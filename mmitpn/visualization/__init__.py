"""Pictures of mmitpn's models."""
from .reconstruction import (label_panels, list_images, load_model,
                             reconstruction_row)

__all__ = ['label_panels', 'list_images', 'load_model', 'reconstruction_row']
