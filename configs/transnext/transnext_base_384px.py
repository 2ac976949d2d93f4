# TransNeXt-Base fine-tuned at 384 px on ImageNet-1k from the 224 px weights
# (evaluation pipeline and fine-tuning schedule: see transnext_small_384px.py).
_base_ = './transnext_small_384px.py'
custom_imports = dict(imports=['mmtransnext'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.6),
    head=dict(in_channels=768))
load_from = 'checkpoints/transnext_base_224_1k.pth'
