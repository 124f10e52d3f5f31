"""Scripts run on a device machine (a GPU session); their logs live under reports/ beside the grid they served."""
