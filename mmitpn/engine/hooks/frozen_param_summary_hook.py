"""One log line for the parameters that are frozen by design."""
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper

from mmitpn.registry import HOOKS
from mmitpn.utils.log_filters import FrozenParamFilter


@HOOKS.register_module()
class FrozenParamSummaryHook(Hook):
    """Replace MMEngine's warning per frozen parameter by one INFO line.

    MMEngine's optimizer constructors warn once per parameter with
    ``requires_grad=False`` (the EMA teacher and the fixed sin-cos position
    embeddings of a pre-training: 52 warnings). These are frozen by design.
    The hook is built with the runner, before the optimizer: it adds a
    filter to the run's logger that turns the first of those warnings into
    one INFO line and drops the rest; at ``before_run`` it logs the frozen
    parameters grouped by top-level module, and at ``after_run`` it removes
    the filter. A config without it keeps MMEngine's warnings.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.filter = FrozenParamFilter()
        self.logger = MMLogger.get_current_instance()
        self.logger.addFilter(self.filter)

    def before_run(self, runner) -> None:
        """Log the frozen parameters in one line.

        Args:
            runner (Runner): The runner.
        """
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        names = [n for n, p in model.named_parameters()
                 if not p.requires_grad]
        if not names:
            return
        groups: dict = {}
        for n in names:
            groups.setdefault(n.split('.')[0], []).append(n)
        parts = [f'{g}.* ({len(v)})' if len(v) > 1 else v[0]
                 for g, v in groups.items()]
        runner.logger.info(
            f'Not optimised (requires_grad=False, by design): {len(names)} '
            f'parameters: {", ".join(parts)}')

    def after_run(self, runner) -> None:
        """Remove the filter from the logger.

        Args:
            runner (Runner): The runner.
        """
        self.logger.removeFilter(self.filter)
