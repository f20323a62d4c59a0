"""Chunk policies: the ChunkPolicy protocol (numpy) and the reference flow policy (torch)."""
