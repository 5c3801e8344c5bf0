
# Appended to the norms solution, before hostile/sympy_imported_afresh.py (a fifth red-team pass's):
# the folders of the other copies of sympy's files, the base interpreter's site-packages or a system
# Python's, put first on sys.path, so that the fresh import below loads one of them instead of the
# worker's own copy. What stops it: every copy of sympy's and mpmath's folders that the worker finds
# is hidden from the children of a server without autograd, and an audit hook refuses their module
# code run afresh from any other (where no second copy exists, the import fails as any does).
import glob as _glob
import sys as _sys

_sys.path[:0] = [root for prefix in (_sys.base_prefix, "/usr", "/usr/local")
                 for root in _glob.glob(f"{prefix}/lib*/python3*/*-packages") + _glob.glob(f"{prefix}/lib/python3/dist-packages")]
