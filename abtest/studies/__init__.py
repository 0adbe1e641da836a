"""Usability studies: definitions (:mod:`.definition`), their storage (:mod:`.store`), the
participant runner (:mod:`.runner`), the analysis (:mod:`.analysis`) and the demo (:mod:`.demo`)."""
