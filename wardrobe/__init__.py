"""wardrobe: a talking closet assistant that names a garment and its colours."""

__version__ = "0.1.0"
