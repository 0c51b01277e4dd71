"""Vantage: runs at interpreter start-up for Python code nodes (the runtime puts this folder on PYTHONPATH).

Maps AWS Panorama's paths (/opt/aws/panorama/storage, /opt/aws/panorama/logs, /panorama) onto the node's folders
before the application's code runs, so that e.g. a RotatingFileHandler made at import time writes to
$VANTAGE_LOGS. Then runs the sitecustomize this one shadows, if there is one. It never stops the interpreter.
"""


def _vantage_boot():
    import os
    import sys

    if os.environ.get("VANTAGE_SOCKET"):
        try:
            from panoramasdk import _paths

            _paths.install()
        except Exception as e:
            try:
                sys.stderr.write("vantage: Panorama paths are not mapped (%s: %s)\n" % (type(e).__name__, e))
            except Exception:
                pass

    # Chain to the sitecustomize further down sys.path (Debian's, a virtual environment's), which this one hides.
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        for entry in sys.path:
            folder = os.path.abspath(entry or os.getcwd())
            if folder == here:
                continue
            candidate = os.path.join(folder, "sitecustomize.py")
            if os.path.isfile(candidate):
                import importlib.util

                spec = importlib.util.spec_from_file_location("_vantage_shadowed_sitecustomize", candidate)
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
                break
    except Exception as e:
        try:
            sys.stderr.write("vantage: the shadowed sitecustomize failed (%s: %s)\n" % (type(e).__name__, e))
        except Exception:
            pass


try:
    _vantage_boot()
except Exception:
    pass
del _vantage_boot
