"""What an export runs: the tensor-in, tensors-out part of a det / seg / cls model.

The data preprocessor (normalisation, padding) and the post-processing (argmax, box
decoding, NMS) stay outside, as in mmdeploy's flows; the graph takes the normalised
[B, 3, H, W] image.

* cls (mmpretrain ImageClassifier): the whole classifier, logits [B, classes]
  (``model(x, mode='tensor')``).
* seg (EncoderDecoder: UPerNet, Mask2Former): ``encode_decode``, the seg logits
  [B, classes, H, W] at the input size, the tensor mmseg's deploy flow argmaxes.
* det (Mask R-CNN, DINO): ``extract_feat``, backbone + neck feature maps.
* part='backbone' (any task): the TransNeXt stages alone.
"""
import torch.nn as nn

from mmtransnext.models.parts import backbone_of

PARTS = ('model', 'backbone')


class TaskGraph(nn.Module):
    """The exported graph of a task model: ``forward(x)`` returns a tuple of tensors named
    by ``output_names``.

    Args:
        model (nn.Module): A built mmdet / mmseg / mmpretrain model (or a bare TransNeXt).
        task (str): 'det', 'seg' or 'cls'.
        part (str): 'model' (the network up to the raw head outputs) or 'backbone' (the
            TransNeXt feature maps). Defaults to 'model'.
    """

    def __init__(self, model: nn.Module, task: str, part: str = 'model'):
        super().__init__()
        if part not in PARTS:
            raise ValueError(f'part must be one of {PARTS}, got {part!r}')
        self.model = model
        self.task = task
        self.part = part
        self.what = ('TransNeXt backbone' if part == 'backbone' else
                     {'cls': 'whole classifier (logits)',
                      'seg': 'encode_decode (seg logits at the input size)',
                      'det': 'backbone + neck (feature maps)'}[task])

    def forward(self, x):
        if self.part == 'backbone':
            return tuple(backbone_of(self.model)(x))
        if self.task == 'cls':
            return (self.model(x, mode='tensor'),)
        if self.task == 'seg':
            height, width = x.shape[-2:]
            meta = dict(img_shape=(height, width), pad_shape=(height, width),
                        ori_shape=(height, width))
            return (self.model.encode_decode(x, [meta] * x.shape[0]),)
        return tuple(self.model.extract_feat(x))

    def output_names(self, outputs):
        if self.part == 'backbone' or self.task == 'det':
            prefix = 'stage' if self.part == 'backbone' else 'feat'
            return [f'{prefix}{i}' for i in range(len(outputs))]
        return ['logits' if self.task == 'cls' else 'seg_logits']
