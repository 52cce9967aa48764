r"""Convert checkpoints for EAN-ResNet (logic: ``ean_mm.utils.checkpoint_convert``).

    # finished classifier training checkpoint -> small backbone-only file for detection configs
    # (init_cfg=dict(type='Pretrained', checkpoint=OUT, prefix='backbone.'))
    python tools/model_converters/ean_checkpoint.py backbone IN OUT [--keep-head]

    # plain ResNet ImageNet checkpoint (mmpretrain or torchvision layout) -> EAN-ResNet init:
    # every ResNet tensor copied, EAN fresh (gn.weight=1, gn.bias=0, alpha=0, delta=0),
    # fc -> head.fc
    python tools/model_converters/ean_checkpoint.py resnet-to-ean IN OUT \
        [--layout auto|mmpretrain|torchvision] [--depth 50] [--ean-groups 64]

Common options: ``--force`` (overwrite OUT), ``--trust-checkpoint`` (allow
``torch.load(weights_only=False)`` for files the safe loader refuses; only for trusted files),
``--verbose`` (list every key). Exit status 1 with an ``error:`` line when the conversion is
refused; nothing is written then.
"""
import argparse
import sys
from typing import List, Optional

from ean_mm.utils.checkpoint_convert import (LAYOUTS, RESNET_DEPTHS, CheckpointConvertError,
                                             backbone_only_file, resnet_to_ean_file)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = parser.add_subparsers(dest='job', required=True, metavar='JOB')

    def add_common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument('src', metavar='IN', help='input checkpoint')
        sub.add_argument('dst', metavar='OUT', help='output checkpoint (parent dirs are created)')
        sub.add_argument('--force', action='store_true', help='overwrite OUT if it exists')
        sub.add_argument('--trust-checkpoint', action='store_true',
                         help='if the safe loader (weights_only=True) refuses IN, load it with '
                         'weights_only=False (runs pickled code: trusted files only)')
        sub.add_argument('--verbose', '-v', action='store_true', help='list every key')

    backbone = jobs.add_parser(
        'backbone', help='keep only backbone.* of a classifier (training) checkpoint',
        description='Write {meta, state_dict: backbone.* tensors (prefix kept)} from an '
        'MMEngine/MMPreTrain checkpoint; drops optimizer, message_hub, param_schedulers, head.')
    add_common(backbone)
    backbone.add_argument('--keep-head', action='store_true',
                          help='also keep the classifier (neck.* and head.*)')

    to_ean = jobs.add_parser(
        'resnet-to-ean', help='initialise an EAN-ResNet from a plain ResNet checkpoint',
        description='Copy every ResNet tensor of an mmpretrain or torchvision ResNet checkpoint '
        'into an EANResNet initialisation (keys backbone.*, classifier head.fc.*); EAN layers '
        'start fresh.')
    add_common(to_ean)
    to_ean.add_argument('--layout', choices=LAYOUTS, default='auto',
                        help='source layout (default: detected)')
    to_ean.add_argument('--depth', type=int, choices=sorted(set(RESNET_DEPTHS.values())),
                        help='ResNet depth (default: inferred from the checkpoint; given, it '
                        'must match)')
    to_ean.add_argument('--ean-groups', type=int, default=64, help='EAN groups G (default 64)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.job == 'backbone':
            report = backbone_only_file(args.src, args.dst, keep_head=args.keep_head,
                                        force=args.force, trust=args.trust_checkpoint)
        else:
            report = resnet_to_ean_file(args.src, args.dst, layout=args.layout, depth=args.depth,
                                        ean_groups=args.ean_groups, force=args.force,
                                        trust=args.trust_checkpoint)
    except CheckpointConvertError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(report.format(verbose=args.verbose))
    return 0


if __name__ == '__main__':
    sys.exit(main())
