# A small mmpretrain classifier with a TransNeXt-micro backbone, for the analysis-tool tests.
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)
default_scope = 'mmpretrain'
model = dict(
    type='ImageClassifier',
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    backbone=dict(type='TransNeXt', arch='micro', img_size=64, pos_bias='extrapolate',
                  out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=384))
