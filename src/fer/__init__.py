"""Facial expression recognition: a library the DVC stage scripts in `src/` call.

The folders follow the data: `fer.data` (source -> split -> cache), `fer.training`,
`fer.evaluation`, `fer.use` (predict, export); params, errors, devices and file writing
sit here at the root, for all of them. Importing the package imports nothing heavy; each
stage pulls in only what it uses.
"""


class FerError(Exception):
    """Bad input or setup that the user can fix; stage scripts print it without a traceback."""
