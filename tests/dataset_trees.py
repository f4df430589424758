"""Tiny fabricated dataset trees in each official layout, with a few generated images each.

Plain functions shared by the data, train, cli and experiments tests (tests/ is on pytest's
``pythonpath``); each takes a folder to build in."""

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

IMAGES_PER_CLASS = 3


def write_image(path: Path, seed: int, size=(24, 18), mode: str = "RGB") -> None:
    """A small random image (its content depends on ``seed``) saved at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = {"RGB": (3,), "L": ()}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], *channels), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_cub(tmp_path: Path) -> Path:
    """CUB_200_2011/ with images of classes 1, 2, 3 (train) and 101, 102 (test)."""
    root = tmp_path / "CUB_200_2011"
    root.mkdir()
    classes = [f"{c:03d}.Bird_{c}" for c in range(1, 201)]
    (root / "classes.txt").write_text("".join(f"{c} {n}\n" for c, n in enumerate(classes, 1)))
    images, labels = [], []
    for class_id in (1, 2, 3, 101, 102):
        for k in range(IMAGES_PER_CLASS):
            path = f"{classes[class_id - 1]}/Bird_{class_id}_{k:04d}.jpg"
            write_image(root / "images" / path, seed=len(images))
            images.append(path)
            labels.append(class_id)
    (root / "images.txt").write_text("".join(f"{i} {p}\n" for i, p in enumerate(images, 1)))
    (root / "image_class_labels.txt").write_text(
        "".join(f"{i} {c}\n" for i, c in enumerate(labels, 1))
    )
    return root


def make_cars(tmp_path: Path) -> Path:
    """cars_annos.mat (as MATLAB writes it: 1 x n struct array, 1 x 196 cell of names) and
    car_ims/ with images of classes 1, 2, 98 (train) and 99, 196 (test)."""
    from scipy.io import savemat

    root = tmp_path / "cars"
    fields = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    rows = []
    for class_id in (1, 2, 98, 99, 196):
        for k in range(IMAGES_PER_CLASS):
            path = f"car_ims/{len(rows) + 1:06d}.jpg"
            write_image(root / path, seed=len(rows))
            rows.append(
                (path, np.uint8(1), np.uint8(1), np.uint8(20), np.uint8(15), class_id, k % 2)
            )
    annotations = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for j, row in enumerate(rows):
        annotations[0, j] = row
    names = np.empty((1, 196), dtype=object)
    for k in range(196):
        names[0, k] = f"Make Model {k + 1} 2012"
    savemat(root / "cars_annos.mat", {"annotations": annotations, "class_names": names})
    return root


def make_sop(tmp_path: Path) -> Path:
    """Stanford_Online_Products/ with 3 train products and 2 test products."""
    root = tmp_path / "Stanford_Online_Products"
    header = "image_id class_id super_class_id path\n"
    image_id = 0
    for split, products in (
        (
            "train",
            [
                (1, 1, "bicycle_final", "111085122871"),
                (2, 1, "bicycle_final", "111265328556"),
                (3, 2, "cabinet_final", "110719127231"),
            ],
        ),
        (
            "test",
            [
                (11319, 1, "bicycle_final", "251952414262"),
                (11320, 3, "chair_final", "300434426549"),
            ],
        ),
    ):
        lines = [header]
        for class_id, super_id, folder, product in products:
            for k in range(IMAGES_PER_CLASS):
                image_id += 1
                path = f"{folder}/{product}_{k}.JPG"
                write_image(root / path, seed=image_id)
                lines.append(f"{image_id} {class_id} {super_id} {path}\n")
        (root / f"Ebay_{split}.txt").write_text("".join(lines))
    return root


def make_inshop(tmp_path: Path) -> Path:
    """In-shop layout: Eval/list_eval_partition.txt and Img/img/...; items 1-2 train, items 3-5
    test (item 5 only in the gallery)."""
    root = tmp_path / "inshop"
    entries = []
    for item, statuses in (
        (1, ["train"] * 3),
        (2, ["train"] * 2),
        (3, ["query", "gallery", "gallery"]),
        (4, ["query", "query", "gallery"]),
        (5, ["gallery", "gallery"]),
    ):
        for k, status in enumerate(statuses):
            path = f"img/WOMEN/Dresses/id_{item:08d}/{k + 1:02d}_{k + 1}_front.jpg"
            write_image(root / "Img" / path, seed=len(entries))
            entries.append(f"{path:<60} id_{item:08d}  {status}\n")
    (root / "Eval").mkdir()
    (root / "Eval" / "list_eval_partition.txt").write_text(
        f"{len(entries)}\nimage_name item_id evaluation_status\n" + "".join(entries)
    )
    return root


def make_folder(tmp_path: Path) -> Path:
    """<root>/<class>/<image> with 6 classes of 4 images (one in a nested folder) + a stray file."""
    root = tmp_path / "photos"
    for c in range(6):
        for k in range(4):
            sub = "nested/" if k == 3 else ""
            write_image(root / f"class_{c}" / f"{sub}img_{k}.png", seed=10 * c + k)
    (root / "class_0" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    write_image(root / ".hidden" / "x.png", seed=99)
    return root


def make_omniglot(tmp_path: Path) -> Path:
    """omniglot-py/images_background/<alphabet>/<character>/*.png as torchvision downloads it:
    4 alphabets x 3 characters x 4 drawings, 105 px, black ink on white."""
    folder = tmp_path / "download" / "omniglot-py" / "images_background"
    for a in range(4):
        for c in range(3):
            for k in range(4):
                image = Image.new("L", (105, 105), 255)
                image.paste(0, (10 * c + 20, 20, 10 * c + 50, 60 + 5 * k))
                path = folder / f"Alphabet_{a}" / f"character{c + 1:02d}" / f"{a}{c}_{k:02d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image.convert("1").save(path)
    return folder


def make_omniglot_zip(omniglot_tree: Path, tmp_path: Path) -> Path:
    """The fabricated Omniglot tree zipped like images_background_small1.zip (one top folder)."""
    archive = tmp_path / "images_background_tiny.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(omniglot_tree.rglob("*.png")):
            z.write(path, Path("images_background_tiny") / path.relative_to(omniglot_tree))
    return archive


def make_table(root: Path, validation_flags=None, box: bool = False, category: bool = True) -> Path:
    """``root/df.csv`` and ``root/images/``: 3 train labels x 3 images, 2 validation labels x 3
    (``validation_flags``: (is_query, is_gallery) per validation row, default all both)."""
    rows = []
    for label in (0, 1, 2, 10, 11):
        for k in range(3):
            path = f"images/{label}_{k}.png"
            write_image(root / path, seed=10 * label + k, size=(20, 16))
            rows.append(
                {"label": label, "path": path, "split": "train" if label < 10 else "validation"}
            )
    table = pd.DataFrame(rows)
    validation = table["split"] == "validation"
    flags = validation_flags or [(True, True)] * int(validation.sum())
    table["is_query"] = pd.Series([None] * len(table), dtype=object)
    table["is_gallery"] = pd.Series([None] * len(table), dtype=object)
    table.loc[validation, "is_query"] = [q for q, _ in flags]
    table.loc[validation, "is_gallery"] = [g for _, g in flags]
    if category:
        table["category"] = "shoes"
    if box:
        table["x_1"], table["x_2"], table["y_1"], table["y_2"] = 2, 12, 4, 10
    table.to_csv(root / "df.csv", index=False)
    return root / "df.csv"
