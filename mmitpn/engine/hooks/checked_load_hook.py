"""Refuse to test a model that its checkpoint does not fill."""
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper

from mmitpn.registry import HOOKS
from ..checkpoint import check_model_checkpoint


@HOOKS.register_module()
class CheckedLoadHook(Hook):
    """Check, before it loads, that a checkpoint fills the whole model.

    ``tools/test.py`` registers it: a checkpoint that leaves tensors of the
    model missing (e.g. a pre-training or backbone-only file given to a
    detection config, whose heads would stay random) or brings keys the
    model does not have stops the run with one line
    (:func:`mmitpn.engine.checkpoint.check_model_checkpoint`), instead of
    reporting metrics of a half-random model.

    Args:
        allow_partial (bool): Log the mismatch at WARNING and go on
            (``--allow-partial``). Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_partial: bool = False) -> None:
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Compare the checkpoint's keys with the model's.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint, before MMEngine puts
                it into the model.
        """
        model = runner.model
        # MMEngine loads into the module of a wrapper or a TTA model
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        check_model_checkpoint(model, checkpoint,
                               getattr(runner, '_load_from', None) or
                               'the checkpoint', self.allow_partial)
