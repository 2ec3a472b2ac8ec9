"""MMEngine's FSDP strategy, resumable with torch >= 2.1."""
from mmengine.registry import STRATEGIES

try:
    from mmengine._strategy import FSDPStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel
except ImportError:  # torch without distributed / FSDP
    FSDPStrategy = None

ResumableFSDPStrategy = None

if FSDPStrategy is not None:

    @STRATEGIES.register_module()
    class ResumableFSDPStrategy(FSDPStrategy):
        """MMEngine's ``FSDPStrategy`` that can resume its optimizer.

        MMEngine 0.10 calls ``FSDP.optim_state_dict_to_load(state_dict,
        model, optimizer)``, the argument order of torch < 2.1; newer torch
        takes ``(model, optim, optim_state_dict)`` and resuming fails with
        ``TypeError: unhashable type: 'dict'``. Everything else is
        MMEngine's.
        """

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
