"""Parts of a built mm model."""


def backbone_of(model):
    """The TransNeXt inside a detector / segmentor / classifier (or the model itself)."""
    return getattr(model, 'backbone', model)
