"""Cubic ODS through Qlik Replicate: full loads and change files per source table."""
