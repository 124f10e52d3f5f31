"""`python -m normlib.execute`: one run of notebooks/run.ipynb from the shell (normlib.sweep.execute)."""
import sys

from .sweep.execute import main

if __name__ == "__main__":
    sys.exit(main())
