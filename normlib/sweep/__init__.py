"""A sweep: grids, notebook execution, where runs execute, the run loop and its command, comparing and collecting
records."""
