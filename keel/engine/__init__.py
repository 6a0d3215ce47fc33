"""The engine that does keel's data work: `local` (pandas in this process, the default) or `dask`
(a Dask cluster: an existing scheduler or a local cluster), chosen by the stack file.

`keel.engine.spec` is pure (no Dask import); the Dask implementations import Dask inside their
functions' modules, which are imported only when the dask engine runs.
"""
