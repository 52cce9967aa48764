"""tools/misc/make_synthetic_data.py: determinism, real on-disk formats, stock datasets and
metrics."""
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch
from conftest import load_tool, run_tool
from PIL import Image

TOOL = 'tools/misc/make_synthetic_data.py'

COCO_NAMES = ('person', 'bicycle', 'car')
VOC_NAMES = ('aeroplane', 'bicycle', 'bird')
SIZE = (96, 80)  # (W, H); not square, so that a swapped width/height shows up
NUM_TRAIN, NUM_VAL = 6, 4


msd = load_tool(TOOL)


def _tree_bytes(root: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


def _generate(tmp_path_factory, fmt: str, seed: int, classes=msd.DEFAULT_CLASSES):
    out = tmp_path_factory.mktemp(f'{fmt}_data')
    return out, msd.generate(str(out), formats=[fmt], num_train=NUM_TRAIN, num_val=NUM_VAL,
                             img_size=SIZE, classes=classes, seed=seed)


@pytest.fixture(scope='module')
def coco_data(tmp_path_factory):
    return _generate(tmp_path_factory, 'coco', 1, COCO_NAMES)


@pytest.fixture(scope='module')
def voc_data(tmp_path_factory):
    return _generate(tmp_path_factory, 'voc', 2, VOC_NAMES)


@pytest.fixture(scope='module')
def imagenet_data(tmp_path_factory):
    return _generate(tmp_path_factory, 'imagenet', 3)


def test_deterministic_bytes(tmp_path):
    kwargs = dict(num_train=3, num_val=2, img_size=64, seed=7)
    msd.generate(str(tmp_path / 'a'), **kwargs)
    msd.generate(str(tmp_path / 'b'), **kwargs)
    msd.generate(str(tmp_path / 'c'), **{**kwargs, 'seed': 8})
    a, b, c = (_tree_bytes(tmp_path / n) for n in 'abc')
    assert len(a) > 20 and a == b
    jpgs = [k for k in a if k.lower().endswith(('.jpg', '.jpeg'))]
    assert jpgs and all(a[k] != c[k] for k in jpgs)  # the seed matters


def test_prefix_stable_and_rerun_replaces(tmp_path):
    """More images keep the first ones; a rerun into the same folder leaves no stale files."""
    msd.generate(str(tmp_path / 'small'), formats=['imagenet'], num_train=2, num_val=1,
                 img_size=48)
    msd.generate(str(tmp_path / 'big'), formats=['imagenet'], num_train=5, num_val=1,
                 img_size=48)
    small, big = _tree_bytes(tmp_path / 'small'), _tree_bytes(tmp_path / 'big')
    for name in ('train/circle/train_000000.JPEG', 'train/square/train_000001.JPEG'):
        assert small[f'imagenet/{name}'] == big[f'imagenet/{name}']
    msd.generate(str(tmp_path / 'big'), formats=['imagenet'], num_train=2, num_val=1,
                 img_size=48)
    assert _tree_bytes(tmp_path / 'big') == small


def test_refuses_to_overwrite_foreign_data(tmp_path):
    (tmp_path / 'coco').mkdir()
    (tmp_path / 'coco' / 'precious.txt').write_text('real data')
    with pytest.raises(FileExistsError, match='refusing'):
        msd.generate(str(tmp_path), formats=['coco'], num_train=1, num_val=1, img_size=32)
    assert (tmp_path / 'coco' / 'precious.txt').exists()


def test_coco_json_and_boxes(coco_data):
    out, result = coco_data
    assert result['coco']['num_val_images'] == NUM_VAL
    for split, num in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        ann = json.loads((out / 'coco' / 'annotations' / f'instances_{split}2017.json')
                         .read_text())
        assert [c['name'] for c in ann['categories']] == list(COCO_NAMES)
        assert [c['id'] for c in ann['categories']] == [1, 2, 3]
        assert len(ann['images']) == num and len(ann['annotations']) >= 2 * num
        assert len({a['id'] for a in ann['annotations']}) == len(ann['annotations'])
        images = {im['id']: im for im in ann['images']}
        for im in ann['images']:
            with Image.open(out / 'coco' / f'{split}2017' / im['file_name']) as pil:
                assert pil.format == 'JPEG' and pil.mode == 'RGB'
                assert pil.size == (im['width'], im['height']) == SIZE
        for a in ann['annotations']:
            im = images[a['image_id']]
            x, y, w, h = a['bbox']
            assert a['iscrowd'] == 0 and a['category_id'] in (1, 2, 3)
            assert w > 0 and h > 0 and 0 < a['area'] <= w * h
            assert x >= 0 and y >= 0 and x + w <= im['width'] and y + h <= im['height']
            poly = np.array(a['segmentation'][0]).reshape(-1, 2)
            # The outline lies inside the image and (up to rasterisation) inside the box.
            assert poly.min() >= 0 and (poly <= [im['width'], im['height']]).all()
            assert (poly >= [x - 1, y - 1]).all() and (poly <= [x + w + 1, y + h + 1]).all()


def test_coco_loads_and_gt_scores_map_1(coco_data):
    from mmdet.datasets import CocoDataset
    from mmdet.evaluation import CocoMetric

    out, _ = coco_data
    root = str(out / 'coco')
    ds = CocoDataset(data_root=root, ann_file='annotations/instances_val2017.json',
                     data_prefix=dict(img='val2017/'), metainfo=dict(classes=COCO_NAMES),
                     pipeline=[], test_mode=True)
    assert len(ds) == NUM_VAL

    metric = CocoMetric(ann_file=osp.join(root, 'annotations/instances_val2017.json'),
                        metric='bbox')
    metric.dataset_meta = ds.metainfo
    for info in map(ds.get_data_info, range(len(ds))):  # data_list is serialised away
        assert osp.isfile(info['img_path'])
        boxes = torch.tensor([i['bbox'] for i in info['instances']], dtype=torch.float32)
        labels = torch.tensor([i['bbox_label'] for i in info['instances']])
        metric.process({}, [dict(img_id=info['img_id'], ori_shape=(info['height'], info['width']),
                                 pred_instances=dict(bboxes=boxes, labels=labels,
                                                     scores=torch.ones(len(labels))))])
    res = metric.evaluate(len(ds))
    assert res['coco/bbox_mAP'] == pytest.approx(1.0)


def test_voc_xml_and_splits(voc_data):
    out, result = voc_data
    for year in ('2007', '2012'):
        base = out / 'VOCdevkit' / f'VOC{year}'
        sets = {s: (base / 'ImageSets' / 'Main' / f'{s}.txt').read_text().split()
                for s in ('train', 'val', 'trainval', 'test')}
        assert (len(sets['train']), len(sets['val']), len(sets['test'])) == \
            (NUM_TRAIN, NUM_VAL, NUM_VAL)
        assert sets['trainval'] == sets['train'] + sets['val']
        assert not set(sets['test']) & set(sets['trainval'])
        assert result['voc'][f'num_VOC{year}_trainval_images'] == NUM_TRAIN + NUM_VAL
        for img_id in sets['trainval'] + sets['test']:
            root = ET.parse(base / 'Annotations' / f'{img_id}.xml').getroot()
            assert root.findtext('filename') == f'{img_id}.jpg'
            w, h = int(root.findtext('size/width')), int(root.findtext('size/height'))
            assert (w, h) == SIZE and root.findtext('size/depth') == '3'
            with Image.open(base / 'JPEGImages' / f'{img_id}.jpg') as pil:
                assert pil.size == (w, h)
            objs = root.findall('object')
            assert objs
            for obj in objs:
                assert obj.findtext('name') in VOC_NAMES and obj.findtext('difficult') == '0'
                x0, y0, x1, y1 = (int(obj.findtext(f'bndbox/{t}'))
                                  for t in ('xmin', 'ymin', 'xmax', 'ymax'))
                assert 1 <= x0 < x1 <= w and 1 <= y0 < y1 <= h  # 1-based, inclusive


@pytest.mark.parametrize('year,split', [('2012', 'val'), ('2007', 'trainval'), ('2007', 'test')])
def test_voc_loads_and_gt_scores_map_1(voc_data, year, split):
    from mmdet.datasets import VOCDataset
    from mmdet.evaluation import VOCMetric

    out, _ = voc_data
    base = out / 'VOCdevkit' / f'VOC{year}'
    ds = VOCDataset(data_root=str(out / 'VOCdevkit'),
                    ann_file=f'VOC{year}/ImageSets/Main/{split}.txt',
                    data_prefix=dict(sub_data_root=f'VOC{year}/'), pipeline=[], test_mode=True)
    n_img = NUM_TRAIN + NUM_VAL if split == 'trainval' else NUM_VAL
    assert len(ds) == n_img and ds.metainfo['dataset_type'] == f'VOC{year}'
    n_xml = sum(len(ET.parse(base / 'Annotations' / f'{i}.xml').getroot().findall('object'))
                for i in (base / 'ImageSets' / 'Main' / f'{split}.txt').read_text().split())
    assert sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds))) == n_xml

    metric = VOCMetric(eval_mode='11points' if year == '2007' else 'area')
    metric.dataset_meta = ds.metainfo
    empty = dict(bboxes=torch.zeros((0, 4)), labels=torch.zeros(0, dtype=torch.long))
    for info in map(ds.get_data_info, range(len(ds))):  # data_list is serialised away
        assert osp.isfile(info['img_path']) and (info['width'], info['height']) == SIZE
        boxes = torch.tensor([i['bbox'] for i in info['instances']], dtype=torch.float32)
        labels = torch.tensor([i['bbox_label'] for i in info['instances']])
        assert (boxes >= 0).all() and (boxes[:, 2] < SIZE[0]).all() \
            and (boxes[:, 3] < SIZE[1]).all()
        assert not any(i['ignore_flag'] for i in info['instances'])
        gt = dict(bboxes=boxes, labels=labels)
        metric.process({}, [dict(gt_instances=gt, ignored_instances=empty,
                                 pred_instances=dict(**gt, scores=torch.ones(len(labels))))])
    assert metric.evaluate(len(ds))['pascal_voc/mAP'] == pytest.approx(1.0)


def test_imagenet_loads_with_mmpretrain(imagenet_data):
    from mmpretrain.datasets import CustomDataset, ImageNet

    out, result = imagenet_data
    root = str(out / 'imagenet')
    classes = list(msd.DEFAULT_CLASSES)
    assert sorted(os.listdir(osp.join(root, 'train'))) == classes
    for split, num in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        ds = ImageNet(data_root=root, split=split, metainfo=dict(classes=classes), pipeline=[])
        assert len(ds) == num == result['imagenet'][f'num_{split}_images']
        # The labels in meta/*.txt agree with the class folders, and the classes are balanced.
        labels = [ds.get_data_info(i)['gt_label'] for i in range(len(ds))]
        for i in range(len(ds)):
            path = ds.get_data_info(i)['img_path']
            assert osp.isfile(path) and osp.basename(osp.dirname(path)) == classes[labels[i]]
        assert labels == [i % len(classes) for i in range(num)]
        # Folder scanning (no annotation file) finds the same samples and labels.
        scan = CustomDataset(data_root=root, data_prefix=split, pipeline=[])
        assert list(scan.metainfo['classes']) == classes
        def samples(d):
            return sorted((d.get_data_info(i)['img_path'], d.get_data_info(i)['gt_label'])
                          for i in range(len(d)))
        assert samples(scan) == samples(ds)


def test_classification_image_shows_its_class():
    """One dominant shape: its painted box is large and its colour is the class colour."""
    for label, kind in enumerate(msd.SHAPE_KINDS):
        img, inst = msd.make_classification_image(np.random.default_rng(label), (64, 64), label)
        assert inst.label == label and img.size == (64, 64)
        x0, y0, x1, y1 = inst.box
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
        assert max(x1 - x0, y1 - y0) > 0.3 * 64 and inst.area > 0.05 * 64 * 64
        centre = np.asarray(img, dtype=float)[(y0 + y1) // 2, (x0 + x1) // 2]
        assert np.abs(centre - msd.KIND_COLORS[kind]).max() < 60


@pytest.mark.parametrize('argv,message', [
    (['--classes'], 'expected at least one argument'),
    (['--classes'] + [f'c{i}' for i in range(4)], 'only 3 shape kinds'),
    (['--classes', 'a', 'a'], 'unique'),
    (['--classes', 'a/b'], 'invalid class name'),
    (['--num-train', '0'], 'must be positive'),
    (['--num-val', '-3'], 'must be positive'),
    (['--img-size', '1', '2', '3'], 'one value'),
    (['--img-size', '16'], 'at least 32'),
    (['--seed', '-1'], 'non-negative'),
    (['--formats', 'kitti'], 'invalid choice'),
])
def test_bad_arguments_exit_with_message(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        # main() parses, then generates: a check that let the bad value through would write.
        msd.main([str(tmp_path), '--num-train', '1', '--num-val', '1'] + argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize('kwargs,message', [
    (dict(classes=[]), 'at least one class'),
    (dict(num_train=0), 'num_train must be a positive integer'),
    (dict(num_val=1.5), 'num_val must be a positive integer'),
    (dict(img_size=(64,)), 'img_size must be one int or'),
    (dict(seed=-2), 'seed must be a non-negative integer'),
    (dict(formats=['x']), 'formats must be a non-empty subset'),
])
def test_generate_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        msd.generate(str(tmp_path), **dict(dict(num_train=1, num_val=1, img_size=32), **kwargs))
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_cli_end_to_end(tmp_path):
    help_run = run_tool(TOOL, '--help')
    assert '--num-train' in help_run.stdout and '--classes' in help_run.stdout
    run = run_tool(TOOL, str(tmp_path), '--formats', 'coco', 'voc', '--num-train', '2',
                   '--num-val', '1', '--img-size', '64', '48', '--classes', 'person', 'bicycle')
    assert 'instances_val2017.json' in run.stdout and '[voc]' in run.stdout
    assert not (tmp_path / 'imagenet').exists()
    ann = json.loads((tmp_path / 'coco/annotations/instances_train2017.json').read_text())
    assert {(im['width'], im['height']) for im in ann['images']} == {(64, 48)}
    assert [c['name'] for c in ann['categories']] == ['person', 'bicycle']
    bad = run_tool(TOOL, str(tmp_path / 'x'), '--num-val', '0', check=False)
    assert bad.returncode == 2 and 'must be positive' in bad.stderr
