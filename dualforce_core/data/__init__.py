"""Raw videos → Lance tables: ingestion with quarantine, media codecs, table access."""
