"""Image captioning: image bytes in, caption text out; default task is digit strips."""
