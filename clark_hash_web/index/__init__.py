"""Indexes: stored codes plus ids, searched with a query vector.

- :mod:`.flat`: :class:`FlatIndex` (Clark Hash codes, exact scan with a proven prefilter);
- :mod:`.binary`: :class:`BinaryIndex` (binary and E8 codes, optional Hamming prefilter);
- :mod:`.two_stage`: :class:`TwoStageIndex` (rescoring from vectors kept on disk).
"""
