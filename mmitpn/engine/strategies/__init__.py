from .fsdp_strategy import ResumableFSDPStrategy

__all__ = ['ResumableFSDPStrategy']
