# The second embedded evaluator of the synthcity suite: ERFNet (Romera et al. 2018; mmseg's ERFNet backbone with
# an FCN head), an encoder-decoder of factorised 1-D convolutions without skip connections: another architecture
# than the U-Net, so that a ranking can be checked against the segmenter. Sized for 128x256 images: two
# downsampling blocks instead of three (the dilated blocks work at 1/4 of the input, so that poles, lights and
# bicycles survive; at 1/8 their IoU stayed below 0.5 and clean mIoU at 0.74), 64 channels, 0.44 M parameters.
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
        enc_downsample_channels=(24, 64),
        enc_stage_non_bottlenecks=(8,),
        enc_non_bottleneck_dilations=(2, 4, 8, 16),
        enc_non_bottleneck_channels=(64,),
        dec_upsample_channels=(24,),
        dec_stages_non_bottleneck=(2,),
        dec_non_bottleneck_channels=(24,),
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        init_cfg=None),
    decode_head=dict(
        type='FCNHead',
        in_channels=24,
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
