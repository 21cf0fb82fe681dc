"""zapvisor api package."""
