# transitional: the config loader moved to risk/config.py
from risk.config import *  # noqa: F401,F403
from risk.config import CODE_DIR, MIN_DRIFT_HISTORY, _check  # noqa: F401
