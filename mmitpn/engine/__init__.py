from .hooks import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
from .strategies import *  # noqa: F401,F403
