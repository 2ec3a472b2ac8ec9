from .cpu_amp_optim_wrapper import CPUAmpOptimWrapper
from .layer_decay_constructor import ITPNLayerDecayOptimWrapperConstructor

__all__ = ['CPUAmpOptimWrapper', 'ITPNLayerDecayOptimWrapperConstructor']
