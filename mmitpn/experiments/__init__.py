"""Experiments on the embedded demo data: the demo and the ablation.

- :mod:`.runs`: runs of a config in this process (train, test, work-dir
  checks), as ``tools/train.py`` / ``tools/test.py`` run it;
- :mod:`.records`: what a run leaves behind (losses) and where it ran;
- :mod:`.ablation`: the ablation's variants, its JSON of runs and the
  runner (the demo is a preset of it);
- :mod:`.statistics`: means and intervals over seeds;
- :mod:`.rendering`: the page and its loss curves.

Importing this package imports no host; the modules import MMEngine.
"""
