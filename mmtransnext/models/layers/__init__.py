from .aggregated_attention import AggregatedAttention
from .block import OverlapPatchEmbed, TransNeXtBlock
from .conv_glu import ConvolutionalGLU
from .cosine_mhsa import CosineMHSA
from .position_bias import (COORDINATE_CACHE, POS_BIAS_MODES, LogCPB,
                            PositionBiasSettings)

__all__ = ['AggregatedAttention', 'CosineMHSA', 'ConvolutionalGLU', 'LogCPB',
           'OverlapPatchEmbed', 'PositionBiasSettings', 'TransNeXtBlock', 'COORDINATE_CACHE',
           'POS_BIAS_MODES']
