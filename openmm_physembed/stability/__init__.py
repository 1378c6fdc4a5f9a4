"""The MD stability benchmark of bond-length sampling."""
