# The second embedded evaluator of the synthcity suite: ERFNet (Romera et al. 2018; mmseg's ERFNet backbone with
# an FCN head), an encoder-decoder of factorised 1-D convolutions without skip connections, narrowed to 1.1 M
# parameters: another architecture than the U-Net, so that a ranking can be checked against the segmenter.
# Same input convention as every mmseg Cityscapes config (19 classes, ignore 255, BGR, ImageNet statistics).
# Trained on clean synthcity by `python -m bench prepare --evaluator erfnet`; nothing downloaded.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=8)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ERFNet',
        in_channels=3,
        enc_downsample_channels=(16, 48, 96),
        enc_stage_non_bottlenecks=(3, 8),
        enc_non_bottleneck_dilations=(2, 4, 8, 16),
        enc_non_bottleneck_channels=(48, 96),
        dec_upsample_channels=(48, 16),
        dec_stages_non_bottleneck=(2, 2),
        dec_non_bottleneck_channels=(48, 16),
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        init_cfg=None),
    decode_head=dict(
        type='FCNHead',
        in_channels=16,
        channels=32,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
default_scope = 'mmseg'
dataset_type = 'CityscapesDataset'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
