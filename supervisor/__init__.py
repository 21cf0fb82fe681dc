"""zapvisor supervisor package."""
