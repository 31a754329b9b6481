"""The vector-index port and its implementations.

Only the port is imported here; an implementation is imported from its own module
(`visual_search.index.embedded`), so a process that uses one never loads the other's dependencies.
"""

from visual_search.index.port import Filters, Hit, IndexedAsset, SearchAfter, VectorIndex

__all__ = ["Filters", "Hit", "IndexedAsset", "SearchAfter", "VectorIndex"]
