"""Panorama's fixed paths, mapped onto the folders Vantage gives the node.

An AWS Panorama application ran in a container where three paths had a meaning:

======================================  ==========================  ===========================
Panorama path                           Vantage folder              environment variable
======================================  ==========================  ===========================
``/opt/aws/panorama/storage``           kept across restarts        ``VANTAGE_STORAGE``
``/opt/aws/panorama/logs``              the application's logs      ``VANTAGE_LOGS``
``/panorama``                           the package's ``src/``      ``VANTAGE_SOURCE``
======================================  ==========================  ===========================

:func:`install` wraps Python's file functions (``open``, ``io.open``, ``os.open``, ``os.stat``, ``os.mkdir``,
``os.rename``, ...) so that a path starting with one of those prefixes (whole path components: ``/panorama/x``
but not ``/panoramax``) is rewritten to the Vantage folder before the real function runs. Everything built on
them (``pathlib``, ``logging.handlers.RotatingFileHandler`` with its rollover, ``shutil``, ``glob``, ``os.walk``)
follows. Other paths, file descriptors and relative paths are passed through untouched.

C extensions that open files themselves (``cv2.imwrite``, ``sqlite3.connect``, ...) see the path as written:
give them :func:`real_path` of it.

This module imports nothing but the standard library: ``vantage_boot/sitecustomize.py`` installs it at
interpreter start-up, before numpy or the application are imported.
"""

import builtins
import io
import os
import sys
import threading

__all__ = ["install", "uninstall", "installed", "real_path", "mappings"]

# (Panorama prefix, environment variable naming the Vantage folder), longest first.
PANORAMA_PATHS = (
    ("/opt/aws/panorama/storage", "VANTAGE_STORAGE"),
    ("/opt/aws/panorama/logs", "VANTAGE_LOGS"),
    ("/panorama", "VANTAGE_SOURCE"),
)

_lock = threading.RLock()
# Current mapping: tuples of (prefix, target) for str and for bytes; _starts* are the prefixes for a quick
# str.startswith(tuple) rejection of every other path.
_table_str = ()
_table_bytes = ()
_starts_str = ()
_starts_bytes = ()
_table_loaded = False
# name -> (owner object, attribute, original) for everything install() replaced.
_patched = {}
_fsencode = os.fsencode


def mappings(environ=None):
    """The mapping the environment asks for: a dict Panorama prefix -> Vantage folder.

    A prefix whose variable is unset is not mapped. ``/panorama`` falls back to the working directory (the
    runtime starts the process in the package's ``src/``) when ``VANTAGE_SOURCE`` is unset but
    ``VANTAGE_SOCKET`` is set.
    """
    env = os.environ if environ is None else environ
    result = {}
    for prefix, variable in PANORAMA_PATHS:
        target = env.get(variable)
        if not target and variable == "VANTAGE_SOURCE" and env.get("VANTAGE_SOCKET"):
            try:
                target = os.getcwd()
            except OSError:
                target = None
        if target:
            target = os.path.abspath(target)
            if len(target) > 1:
                target = target.rstrip("/")
            if target != prefix:
                result[prefix] = target
    return result


def _load(environ=None):
    global _table_str, _table_bytes, _starts_str, _starts_bytes, _table_loaded
    table = mappings(environ)
    ordered = sorted(table.items(), key=lambda kv: -len(kv[0]))
    _table_str = tuple(ordered)
    _table_bytes = tuple((_fsencode(p), _fsencode(t)) for p, t in ordered)
    _starts_str = tuple(p for p, _ in ordered)
    _starts_bytes = tuple(p for p, _ in _table_bytes)
    _table_loaded = True
    return table


def _map(path):
    """``path`` rewritten if it starts with a mapped Panorama prefix; otherwise ``path`` itself (same object)."""
    t = type(path)
    if t is str:
        if not path.startswith(_starts_str):
            return path
        for prefix, target in _table_str:
            if path.startswith(prefix):
                n = len(prefix)
                if len(path) == n or path[n] == "/":
                    return target + path[n:]
        return path
    if t is int:
        return path
    if t is bytes:
        if not path.startswith(_starts_bytes):
            return path
        for prefix, target in _table_bytes:
            if path.startswith(prefix):
                n = len(prefix)
                if len(path) == n or path[n:n + 1] == b"/":
                    return target + path[n:]
        return path
    if isinstance(path, str):  # a subclass of str
        plain = str.__str__(path)
        mapped = _map(plain)
        return path if mapped is plain else mapped
    if isinstance(path, bytes):
        plain = bytes(path)
        mapped = _map(plain)
        return path if mapped is plain else mapped
    if getattr(t, "__fspath__", None) is None:
        return path
    try:
        raw = os.fspath(path)
    except TypeError:
        return path
    mapped = _map(raw)
    return path if mapped is raw else mapped


def real_path(path):
    """The path the process really uses for ``path``: a Panorama path (``/opt/aws/panorama/storage/...``,
    ``/opt/aws/panorama/logs/...``, ``/panorama/...``) becomes the Vantage folder it maps to; anything else is
    returned as given (as ``str`` or ``bytes``).

    For C extensions that open files themselves, e.g. ``cv2.imwrite(real_path('/opt/aws/panorama/storage/a.jpg'),
    img)``. Works whether or not the rewriting is installed.
    """
    if not _table_loaded:
        with _lock:
            if not _table_loaded:
                _load()
    mapped = _map(path)
    if mapped is path and not isinstance(path, (str, bytes)):
        return os.fspath(path)
    return mapped


class _Rewriting(object):
    """Calls a file function with its path argument(s) rewritten.

    A plain callable object, not a function: it does not become a bound method when a class body takes it as an
    attribute (``pathlib._NormalAccessor.stat = os.stat`` in Python 3.8-3.10).
    """

    def __init__(self, func, positions, keywords):
        self.__wrapped__ = func
        self.__name__ = getattr(func, "__name__", "wrapped")
        self.__qualname__ = getattr(func, "__qualname__", self.__name__)
        self.__module__ = getattr(func, "__module__", None)
        self.__doc__ = getattr(func, "__doc__", None)
        self._positions = positions
        self._keywords = keywords

    def __call__(self, *args, **kwargs):
        if args:
            if self._positions == 1:
                first = args[0]
                mapped = _map(first)
                if mapped is not first:
                    args = (mapped,) + args[1:]
            else:
                changed = False
                new = list(args)
                for i in range(min(self._positions, len(new))):
                    m = _map(new[i])
                    if m is not new[i]:
                        new[i] = m
                        changed = True
                if changed:
                    args = tuple(new)
        if kwargs:
            for key in self._keywords:
                if key in kwargs:
                    kwargs[key] = _map(kwargs[key])
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self):
        return "<panoramasdk path rewriting for %r>" % (self.__wrapped__,)


# os functions whose first argument is a path (two for those marked 2), and the keyword names of path arguments.
_OS_FUNCTIONS = (
    ("open", 1, ("path",)),
    ("stat", 1, ("path",)),
    ("lstat", 1, ("path",)),
    ("mkdir", 1, ("path",)),
    ("makedirs", 1, ("name",)),
    ("listdir", 1, ("path",)),
    ("scandir", 1, ("path",)),
    ("remove", 1, ("path",)),
    ("unlink", 1, ("path",)),
    ("rmdir", 1, ("path",)),
    ("removedirs", 1, ("name",)),
    ("rename", 2, ("src", "dst")),
    ("renames", 2, ("old", "new")),
    ("replace", 2, ("src", "dst")),
    ("link", 2, ("src", "dst")),
    ("symlink", 2, ("src", "dst")),
    ("readlink", 1, ("path",)),
    ("access", 1, ("path",)),
    ("chmod", 1, ("path",)),
    ("lchmod", 1, ("path",)),
    ("chown", 1, ("path",)),
    ("lchown", 1, ("path",)),
    ("utime", 1, ("path",)),
    ("truncate", 1, ("path",)),
    ("statvfs", 1, ("path",)),
    ("chdir", 1, ("path",)),
    ("mkfifo", 1, ("path",)),
    ("mknod", 1, ("path",)),
    ("pathconf", 1, ("path",)),
    ("getxattr", 1, ("path",)),
    ("setxattr", 1, ("path",)),
    ("listxattr", 1, ("path",)),
    ("removexattr", 1, ("path",)),
)

_SUPPORTS = ("supports_dir_fd", "supports_fd", "supports_follow_symlinks", "supports_effective_ids")


def installed():
    """Whether the path rewriting is in place."""
    return bool(_patched)


def _replace(key, owner, attribute, wrapper):
    _patched[key] = (owner, attribute, getattr(owner, attribute))
    setattr(owner, attribute, wrapper)


def install(environ=None):
    """Installs the path rewriting, reading the mapping from the environment (see :func:`mappings`).

    Idempotent: a second call only reloads the mapping (the functions are wrapped once). Does nothing and returns
    False when no Panorama path is mapped (no ``VANTAGE_*`` folder in the environment); True otherwise.
    """
    with _lock:
        table = _load(environ)
        if _patched:
            return True
        if not table:
            return False
        open_wrapper = _Rewriting(builtins.open, 1, ("file",))
        _replace("builtins.open", builtins, "open", open_wrapper)
        if io.open is open_wrapper.__wrapped__:
            _replace("io.open", io, "open", open_wrapper)
        else:
            _replace("io.open", io, "open", _Rewriting(io.open, 1, ("file",)))
        wrappers = {}
        for name, positions, keywords in _OS_FUNCTIONS:
            original = getattr(os, name, None)
            if original is None:
                continue
            wrapper = _Rewriting(original, positions, keywords)
            wrappers[original] = wrapper
            _replace("os." + name, os, name, wrapper)
        # Keep os.supports_* truthful for the wrappers (shutil.rmtree and os.fwalk consult them).
        for set_name in _SUPPORTS:
            supported = getattr(os, set_name, None)
            if isinstance(supported, set):
                for original, wrapper in wrappers.items():
                    if original in supported:
                        supported.add(wrapper)
        _patch_pathlib_accessor(wrappers, open_wrapper)
        return True


def _patch_pathlib_accessor(wrappers, open_wrapper):
    # Python 3.8-3.10: pathlib captured os.stat & co. as class attributes when it was imported. If it was
    # imported before install(), swap them too (if imported later it picks up the wrappers by itself).
    pathlib = sys.modules.get("pathlib")
    accessor = getattr(pathlib, "_NormalAccessor", None) if pathlib is not None else None
    if accessor is None:
        return
    for attribute, value in list(vars(accessor).items()):
        wrapper = None
        if value is open_wrapper.__wrapped__:
            wrapper = open_wrapper
        else:
            try:
                wrapper = wrappers.get(value)
            except TypeError:
                wrapper = None
        if wrapper is not None:
            _replace("pathlib._NormalAccessor." + attribute, accessor, attribute, wrapper)


def uninstall():
    """Removes the path rewriting (for tests)."""
    global _table_loaded
    with _lock:
        for set_name in _SUPPORTS:
            supported = getattr(os, set_name, None)
            if isinstance(supported, set):
                for owner, attribute, original in _patched.values():
                    wrapper = getattr(owner, attribute, None)
                    if isinstance(wrapper, _Rewriting):
                        supported.discard(wrapper)
        for owner, attribute, original in reversed(list(_patched.values())):
            setattr(owner, attribute, original)
        _patched.clear()
        _table_loaded = False
