"""Retention: how long each kind of record is kept, the DSL's review of records past their
period, legal holds, and deletion after review."""
