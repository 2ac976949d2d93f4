"""What counts as an image file, for every check and tool that looks for images."""
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm',
                    '.pgm')


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (in any letter case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)
