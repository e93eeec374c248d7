"""Search strategies of hpsearch, one per module, registered by name through the
entry-point group ``hpsearch.searchers``. The core never imports this package directly."""
