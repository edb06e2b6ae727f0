"""Byte formats: sketch files (:mod:`.sketch_file`) and the sync envelope (:mod:`.sync_wire`)."""
