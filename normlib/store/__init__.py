"""Its files: records (written atomically), locks, provenance, scratch folders, and the processes that hold them."""
