"""`python -m normlib.compare`: a rerun's records against published ones (normlib.sweep.compare)."""
import sys

from .sweep.compare import main

if __name__ == "__main__":
    sys.exit(main())
