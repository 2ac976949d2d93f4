# Parameter-wise optimizer settings of every TransNeXt config, defined once here.
# Only new names (transnext_*): this file is listed beside mmdet/mmseg/mmpretrain bases.
#
# TransNeXtOptimWrapperConstructor (mmtransnext/engine/optim_constructor.py) multiplies
# the multipliers of ALL matching rules; mmengine's default constructor would apply only
# the longest matching key (a backbone 'temperature' would lose the backbone lr x0.1, and
# Mask2Former's 'query_embed' key would give the backbone's query_embedding lr x1).
transnext_optim_constructor = 'TransNeXtOptimWrapperConstructor'

# No weight decay on the attention temperature, query embedding, local relative position
# bias, the log-CPB MLP (cpb_fc1, cpb_fc2), norm layers and biases.
transnext_paramwise_cfg = dict(
    norm_decay_mult=0.0,
    bias_decay_mult=0.0,
    custom_keys={
        'query_embedding': dict(decay_mult=0.0),
        'relative_pos_bias_local': dict(decay_mult=0.0),
        'cpb_fc1': dict(decay_mult=0.0),
        'cpb_fc2': dict(decay_mult=0.0),
        'temperature': dict(decay_mult=0.0),
    })

# DINO and Mask2Former: the same, with the backbone at 0.1x the base lr.
transnext_paramwise_cfg_backbone_lr01 = dict(
    transnext_paramwise_cfg,
    custom_keys=dict(transnext_paramwise_cfg['custom_keys'], backbone=dict(lr_mult=0.1)))
