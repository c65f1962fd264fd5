"""Small fake model APIs on 127.0.0.1 that speak the real wire formats (and fail in the real ways)."""
