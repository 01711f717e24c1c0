"""Image archives written by ``docker save``, skopeo and peers: reading, inspecting, validating."""

from .reader import ImageArchive

__all__ = ["ImageArchive"]
