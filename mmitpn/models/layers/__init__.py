from .block import (Attention, HiViTBlock, Mlp, RowSlicedBlocks,
                    init_trunc_normal)
from .patch_ops import (PatchEmbed, PatchMerge, PatchSplit, dense_to_tokens,
                        gather_patches, masked_patch_ids, tokens_to_dense)
from .pos_embed import (build_2d_sincos_pos_embed, decomposed_rel_pos_bias,
                        decomposed_rel_pos_table, relative_position_index,
                        resize_decomposed_rel_pos, resize_pos_embed,
                        resize_rel_pos_table)
from .token_decoder import TokenDecoder

__all__ = [
    'Attention', 'HiViTBlock', 'Mlp', 'RowSlicedBlocks', 'init_trunc_normal',
    'PatchEmbed',
    'PatchMerge', 'PatchSplit', 'dense_to_tokens', 'gather_patches',
    'masked_patch_ids', 'tokens_to_dense', 'build_2d_sincos_pos_embed',
    'decomposed_rel_pos_bias', 'decomposed_rel_pos_table',
    'relative_position_index', 'resize_decomposed_rel_pos',
    'resize_pos_embed', 'resize_rel_pos_table', 'TokenDecoder'
]
