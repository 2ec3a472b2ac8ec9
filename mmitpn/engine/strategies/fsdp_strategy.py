"""MMEngine's FSDP strategy, resumable with torch >= 2.1, keeping frozen
teachers whole."""
import copy

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmitpn.registry import STRATEGIES
from mmitpn.utils.safe_load import checkpoint_globals

try:
    from mmengine._strategy import FSDPStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel
except ImportError:  # torch without distributed / FSDP
    FSDPStrategy = None

ResumableFSDPStrategy = None


def frozen_teacher(model: nn.Module):
    """The model's ``teacher`` if it is a module without trainable
    parameters (iTPN's EMA teacher, the CLIP teacher), else None.

    Args:
        model (nn.Module): The unwrapped model.

    Returns:
        nn.Module | None: The frozen teacher.
    """
    teacher = getattr(model, 'teacher', None)
    if not isinstance(teacher, nn.Module):
        return None
    params = list(teacher.parameters())
    if not params or any(p.requires_grad for p in params):
        return None
    return teacher


if FSDPStrategy is not None:

    @STRATEGIES.register_module()
    class ResumableFSDPStrategy(FSDPStrategy):  # noqa: F811
        """MMEngine's ``FSDPStrategy`` that can resume its optimizer and
        keeps a frozen teacher whole on every rank.

        - MMEngine 0.10 calls ``FSDP.optim_state_dict_to_load(state_dict,
          model, optimizer)``, the argument order of torch < 2.1; newer
          torch takes ``(model, optim, optim_state_dict)`` and resuming
          fails with ``TypeError: unhashable type: 'dict'``. Fixed here.
        - A model whose ``teacher`` submodule has no trainable parameters
          (:class:`~mmitpn.models.ITPNMIM`'s EMA teacher,
          :class:`~mmitpn.models.ITPNCLIP`'s CLIP teacher) gets it as an
          FSDP *ignored module* (added to the wrapper's
          ``ignored_modules``): every rank keeps the whole teacher, it is
          never gathered or synchronised, and the EMA hook updates it from
          the gathered student. What goes into the state dict is the
          teacher's own business (the EMA teacher is saved, the CLIP
          teacher is not).
        - Checkpoints load with ``weights_only`` and mmitpn's allow-list
          (:meth:`load_checkpoint`).

        Everything else is MMEngine's.
        """

        def _wrap_model(self, model: nn.Module):
            """Wrap ``model`` in FSDP, its frozen teacher ignored.

            Args:
                model (nn.Module): The model.

            Returns:
                FullyShardedDataParallel: The wrapped model.
            """
            teacher = None if is_model_wrapper(model) else \
                frozen_teacher(model)
            if teacher is not None:
                wrapper = copy.copy(self.model_wrapper) or dict(
                    type='MMFullyShardedDataParallel')
                ignored = list(wrapper.get('ignored_modules', None) or [])
                if all(isinstance(m, str) for m in ignored):
                    if 'teacher' not in ignored:
                        ignored.append('teacher')
                elif not any(m is teacher for m in ignored):
                    ignored.append(teacher)
                wrapper['ignored_modules'] = ignored
                self.model_wrapper = wrapper
            return super()._wrap_model(model)

        def load_checkpoint(self, filename: str, **kwargs) -> dict:
            """MMEngine's loading (``load_from``, resuming) with PyTorch's
            ``weights_only`` loads allowing mmitpn's list of plain-data
            globals (:func:`mmitpn.utils.safe_load.checkpoint_globals`: the
            message hub, numpy scalars), as the runner's
            ``WeightsOnlyLoadHook`` does: ``FlexibleRunner`` loads before
            ``before_run``, so the hook cannot cover it.

            Args:
                filename (str): The checkpoint.
                **kwargs: As :meth:`FSDPStrategy.load_checkpoint`.

            Returns:
                dict: The loaded checkpoint.
            """
            with checkpoint_globals():
                return super().load_checkpoint(filename, **kwargs)

        def load_optim_state_dict(self, state_dict: dict) -> None:
            """Load a (full or local) optimizer state dict.

            Args:
                state_dict (dict): As saved by this strategy.
            """
            to_load = FullyShardedDataParallel.optim_state_dict_to_load
            optim_state_dict = to_load(
                model=self.model,
                optim=self.optim_wrapper.optimizer,
                optim_state_dict=state_dict)
            self.optim_wrapper.load_state_dict(optim_state_dict)
