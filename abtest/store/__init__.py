"""Storage: the registry's core rows and lifecycle (:mod:`.registry`) and the one write path for
events (:mod:`.events`)."""
