"""Image sources for the miner: image folders, annotation files, CUB-200-2011, synthetic parts.

Every source produces a :class:`~miner.data.records.Dataset` of
:class:`~miner.data.records.ImageRecord`; :mod:`miner.data.images` reads images and cuts the
object crops the models see.
"""

__all__: list[str] = []
