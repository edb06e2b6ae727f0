"""Sync between devices and a server: :mod:`.store`, :mod:`.server`, :mod:`.client`."""
