"""Config -> model for the analysis tools (any of mmdet, mmseg, mmpretrain)."""
from mmengine.config import Config, DictAction  # noqa: F401  (DictAction for the tools)
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint


def load_config(path, cfg_options=None) -> Config:
    from mmtransnext.cli.cfg_options import merge_cfg_options
    cfg = Config.fromfile(path)
    merge_cfg_options(cfg, cfg_options)  # a key that looks like a typo is an error
    return cfg


def build_model(cfg: Config, checkpoint=None, device='cpu'):
    """Build ``cfg.model`` in the config's scope. With ``checkpoint`` the backbone's own
    init_cfg is dropped (the checkpoint replaces it) and the weights load strictly."""
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    if checkpoint is not None:
        backbone = cfg.model.get('backbone')
        if backbone is not None:
            backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device).eval()
