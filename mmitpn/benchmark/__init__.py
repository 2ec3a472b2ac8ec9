"""Benchmarks of mmitpn against mmpretrain 1.2.0's HiViT / iTPN, behind
``tools/analysis_tools/benchmark.py``.

- :mod:`.memory`: the peak-memory meter (CUDA allocator, CPU resident set);
- :mod:`.reference`: both sides built with the same architecture and
  weights, outputs checked equal before anything is timed;
- :mod:`.cases`: the CPU / GPU cases a, b, c and how they are timed;
- :mod:`.throughput`: images/s, peak memory and MFU of the pre-training
  steps on an accelerator, largest batch by doubling, within a time budget;
- :mod:`.flops`: model FLOPs (attention included) and MFU;
- :mod:`.report`: tables, Markdown pages and machine facts;
- :mod:`.gpu_check`: the report of ``tools/gpu_check.sh``.
"""
