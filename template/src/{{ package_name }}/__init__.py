"""Predict NYC taxi trip duration (minutes) from pickup zone, drop-off zone and distance."""

from importlib.metadata import PackageNotFoundError, entry_points, version


def _version() -> str:
    """Installed version, whether or not the distribution is named like the package."""
    try:
        return version(__name__)
    except PackageNotFoundError:
        pass
    # Otherwise find the distribution through the console script it declares.
    for script in entry_points(group="console_scripts"):
        if script.value.startswith(f"{__name__}.") and script.dist is not None:
            return script.dist.version
    return "0.0.0"  # running from a source tree that is not installed


__version__ = _version()

__all__ = ["__version__"]
