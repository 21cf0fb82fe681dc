"""zapvisor actors package."""
