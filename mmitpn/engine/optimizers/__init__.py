from .layer_decay_constructor import ITPNLayerDecayOptimWrapperConstructor

__all__ = ['ITPNLayerDecayOptimWrapperConstructor']
