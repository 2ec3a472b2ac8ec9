"""Datasets that would train on less than the config says stop the run."""
from mmengine.hooks import Hook

from mmitpn.datasets.checks import check_dataset_files
from mmitpn.registry import HOOKS


@HOOKS.register_module()
class DataCheckHook(Hook):
    """Check the dataset files of the run before the first iteration.

    Runs :func:`mmitpn.datasets.check_dataset_files` on the run's config at
    ``before_run``: COCO annotation files whose categories do not match
    ``metainfo.classes`` (a silently smaller dataset), images all below
    ``filter_cfg.min_size``, ADE20K-style folders that are empty or lack
    label maps each stop the run with one line naming the file and the fix
    (a partial mismatch is a WARNING). ``tools/train.py`` also runs the
    same checks before it builds the runner, because a dataset that ends
    up empty makes the hosts fail while they build it, before any hook
    runs.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        """Check the datasets of ``runner.cfg``.

        Args:
            runner (Runner): The runner.
        """
        if runner.cfg:
            check_dataset_files(runner.cfg)
