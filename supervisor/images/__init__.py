"""OCI images: references, registries, the registry client, the content store, layers, configs.

This package sits below the runtime (it imports only the standard library and third-party
libraries) and is imported in pieces: ``ctrctl images`` reads the store without loading the
registry client, and nothing here imports aiohttp or pyroute2.
"""
