"""duan8: the service that joins Project 8 volunteers' chat to the province's reporting."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("duan8")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
