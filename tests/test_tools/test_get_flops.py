"""tools/analysis_tools/get_flops.py on the tiny demo configs."""
import pytest
from conftest import REPO, load_tool
from mmengine.config import Config

DET_DEMO = 'configs/itpn/itpn-tiny_mask-rcnn_1xb4-6e_demo.py'
SEG_DEMO = 'configs/itpn/itpn-tiny_upernet_1xb4-2k_demo.py'


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/analysis_tools/get_flops.py')


def test_detector_pads_and_counts(tool):
    # 100x140 is padded to the detector's pad_size_divisor (64)
    r = tool.get_flops(Config.fromfile(str(REPO / DET_DEMO)), (100, 140))
    assert r['task'] == 'detector' and r['shape'] == (128, 192)
    assert 0 < r['backbone_flops'] < r['flops']
    assert 0 < r['backbone_params'] < r['params']


def test_main_prints_segmentor(tool, capsys):
    tool.main([str(REPO / SEG_DEMO), '--shape', '128'])
    out = capsys.readouterr().out
    assert 'EncoderDecoder (segmentor)' in out
    assert 'Input shape: (1, 3, 128, 128)' in out
    assert 'FLOPs: ' in out and 'Params: ' in out


def test_classifier_config(tool):
    cfg = Config.fromfile(
        str(REPO / 'configs/itpn/'
            'itpn-base-pixel_8xb128-coslr-100e_in1k.py'))
    cfg.model.backbone.arch = dict(
        embed_dims=64, depths=(1, 1, 2), num_heads=2)
    cfg.model.head.in_channels = 64
    r = tool.get_flops(cfg, (64, 64))
    assert r['task'] == 'classifier' and r['shape'] == (64, 64)
    # the head adds 64 x 1000 + 1000 parameters to backbone + neck
    assert r['params'] - r['backbone_params'] == 65000
