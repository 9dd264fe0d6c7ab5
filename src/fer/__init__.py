"""Facial expression recognition: a library the DVC stage scripts in `src/` call.

Importing the package imports nothing heavy; each stage pulls in only what it uses.
"""


class FerError(Exception):
    """Bad input or setup that the user can fix; stage scripts print it without a traceback."""
