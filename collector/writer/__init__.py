"""spanhouse package."""
