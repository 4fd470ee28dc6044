"""DAX: the binary protocol the DAX client libraries speak, served in front of the same action layer."""
