"""Semantic-segmentation evaluation with mmsegmentation: the only package that imports OpenMMLab.

Import ``seg_eval.mmcv_compat`` (done by every module here) before any ``mmseg`` import.
"""
