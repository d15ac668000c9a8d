"""The load machinery every source shares: scan -> claim -> apply -> archive or error."""
