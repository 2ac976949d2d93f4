"""Tokens [B, N, C] and images [B, C, H, W] of the same map, as views of each other."""


def tokens_as_image(x, height, width):
    """[B, N, C] tokens as a [B, C, H, W] channels-last image: a view, no copy."""
    B, N, C = x.shape
    return x.contiguous().transpose(1, 2).view(B, C, height, width)


def image_as_tokens(x):
    """[B, C, H, W] image as [B, N, C] tokens: a view, no copy (contiguous tokens when the
    image is channels-last)."""
    return x.flatten(2).transpose(1, 2)
