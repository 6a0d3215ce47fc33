"""Batch scoring: a file, a directory of Parquet parts or an SQL query, streamed in bounded chunks
through the online payload contract and the registered model, published atomically."""
