"""Task functions for the tests of tpdynamics.runs (a module of its own: worker processes import it by name)."""
import os
import time
from pathlib import Path


def square(config):
    """``{"value": x**2, "pid": ...}``."""
    return {"value": config["x"] ** 2, "pid": os.getpid()}


def fail_on(config):
    """Raise for ``x == bad``, else square."""
    if config["x"] == config.get("bad"):
        raise ArithmeticError(f"deliberate failure for x={config['x']}")
    return {"value": config["x"] ** 2}


def die_once(config):
    """Kill the worker process (os._exit) the first time, as the kernel's OOM killer would; then succeed."""
    marker = Path(config["marker"])
    if not marker.exists():
        marker.write_text("died once")
        os._exit(9)
    return {"value": config["x"] ** 2}


def sleep(config):
    time.sleep(config["seconds"])
    return {"slept": config["seconds"]}
