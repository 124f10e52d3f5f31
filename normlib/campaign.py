"""`python -m normlib.campaign`: a campaign's finished runs, collected (normlib.sweep.campaign)."""
import sys

from .sweep.campaign import main

if __name__ == "__main__":
    sys.exit(main())
