"""The `wbs` administration command."""
import warnings

# eventlet announces its deprecation on import; an operator's terminal is not the place for it.
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
