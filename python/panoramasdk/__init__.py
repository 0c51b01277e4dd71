"""panoramasdk for Vantage: run AWS Panorama applications unchanged on the Vantage runtime.

The API is Panorama's Application SDK 1.2 (``panoramasdk.node``, ``inputs``/``outputs`` ports, ``media``,
``call``), spoken over the Vantage app protocol (a Unix socket and shared memory; docs/app-protocol.md), plus
Vantage's additions: ``node.publish(event, snapshot=None)``, :func:`real_path` and :func:`sdk_stats`.
docs/sdk-python.md is the user guide.

Importing the package maps Panorama's paths (``/opt/aws/panorama/storage``, ``/opt/aws/panorama/logs``,
``/panorama``) onto the node's folders (see :mod:`panoramasdk._paths`); numpy and the protocol machinery load on
first use of ``node``, ``media`` and the rest.
"""

from . import _paths
from ._paths import real_path
from . import tracking  # pure Python, light: ByteTracker, Zone, CountingLine, SceneAnalyzer (Vantage addition)

__version__ = "1.2.0+vantage"

__all__ = ["node", "media", "port", "real_path", "sdk_stats", "tracking", "__version__"]

_LAZY = {"node", "media", "port", "sdk_stats", "_reset_for_tests"}

try:
    _paths.install()
except Exception as _e:  # never fail the import over the path mapping
    import sys as _sys

    _sys.stderr.write("panoramasdk: Panorama paths are not mapped (%s)\n" % (_e,))


def __getattr__(name):
    # PEP 562: numpy and the protocol load when the application first touches the API, not at import (so
    # sitecustomize and `import panoramasdk` alone stay light).
    if name in _LAZY:
        from . import _core

        value = getattr(_core, name)
        globals()[name] = value
        return value
    raise AttributeError("module 'panoramasdk' has no attribute %r" % (name,))


def __dir__():
    return sorted(set(globals()) | _LAZY)
