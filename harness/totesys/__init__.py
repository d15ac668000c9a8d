"""The totesys source database played: seeded with a sales history, kept busy."""
