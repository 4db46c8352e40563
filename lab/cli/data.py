"""``lab data fetch | info``: find, verify and cache a dataset; show its source and checksums."""

from __future__ import annotations

import argparse
import json

from lab.data import dataset_info, load_dataset


def run(args: argparse.Namespace) -> int:
    if args.data_command == "fetch":
        ds = load_dataset(args.name, args.data_dir)
        info = dataset_info(args.name, args.data_dir)
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            print(f"{ds.name}: {len(ds.train_y)} train + {len(ds.test_y)} test images {ds.input_shape}, "
                  f"from {ds.source}; fingerprint {ds.fingerprint[:16]}…")  # fmt: skip
        return 0
    info = dataset_info(args.name, args.data_dir)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "files":
            print("files:")
            for f in value:
                sums = " ".join(f"{k} {f[k]}" for k in ("sha256", "md5") if k in f)
                print(f"  {f['path']}  {f.get('bytes', '?')} bytes  {sums}")
        elif isinstance(value, (list, tuple)):
            print(f"{key}: {', '.join(map(str, value))}")
        else:
            print(f"{key}: {value}")
    return 0
