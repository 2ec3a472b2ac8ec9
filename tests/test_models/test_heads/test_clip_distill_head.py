import torch

from mmitpn.models.heads import CLIPDistillHead


def test_target_norm_is_the_official_layer_norm():
    """The targets pass a non-affine LayerNorm with torch's default eps 1e-5
    (the official ``clip_distill.LN``, itpn_clip/clip/create_clip.py:16),
    then smooth-L1 over every token. Low-variance targets (var 1e-6) make
    the eps visible (eps 1e-6 fails it)."""
    head = CLIPDistillHead(16, (1, ), embed_dims=16, target_dims=8).eval()
    torch.manual_seed(0)
    pred = torch.randn(2, 4, 8)
    target = 1e-3 * torch.randn(2, 4, 8)
    head.decoder.register_forward_hook(lambda m, a, out: pred)
    loss = head.loss([torch.randn(2, 4, 1, 1, 16)], target)

    mean = target.mean(-1, keepdim=True)
    var = ((target - mean)**2).mean(-1, keepdim=True)
    want = (target - mean) / torch.sqrt(var + 1e-5)
    d = (pred - want).abs()
    expected = torch.where(d < 1, 0.5 * d**2, d - 0.5).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-6)
