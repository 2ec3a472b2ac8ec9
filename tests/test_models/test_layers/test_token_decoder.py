"""mmitpn/models/layers/token_decoder.py: block options."""
import pytest

from mmitpn.models.layers import TokenDecoder


def _decoder(**block_cfg):
    return TokenDecoder(16, (1, ),
                        16,
                        8,
                        depth=2,
                        num_heads=2,
                        use_mask_token=False,
                        embed_inputs=False,
                        block_cfg=block_cfg)


def _rates(decoder):
    return [getattr(b.drop_path, 'drop_prob', 0.) for b in decoder.blocks]


def test_drop_path_one_rate_or_one_per_block():
    # the official CLIP side head continues the backbone's schedule: one
    # rate per block (itpn_clip/modeling_pretrain.py:184)
    assert _rates(_decoder(drop_path=(0.05, 0.25))) == [0.05, 0.25]
    assert _rates(_decoder(drop_path=0.1)) == [0.1, 0.1]
    assert _rates(_decoder()) == [0., 0.]
    with pytest.raises(ValueError, match='3 rates for 2 blocks'):
        _decoder(drop_path=(0.1, 0.2, 0.3))
