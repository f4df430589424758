"""dmlviz: train deep metric learning embeddings and see why image retrieval fails."""

__version__ = "0.1.0"
