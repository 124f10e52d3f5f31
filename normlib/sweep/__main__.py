"""`python -m normlib.sweep`: run a grid (normlib.sweep.loop)."""
import sys

from .loop import main

sys.exit(main())
