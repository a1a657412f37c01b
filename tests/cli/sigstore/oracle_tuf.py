#!/usr/bin/env python3
"""python-tuf (the reference TUF client, `tuf.ngclient.Updater`) as the oracle for the repositories
make_tuf_repo.py writes: one refresh and the download of `trusted_root.json`.

    oracle_tuf.py STATE_DIR BOOTSTRAP_ROOT URL

STATE_DIR keeps the client's trusted metadata between runs (like our cache), starting from
BOOTSTRAP_ROOT. Prints "ok" and exits 0, or prints the exception's class and message and exits 1.
"""
import os
import shutil
import sys

from tuf.ngclient import Updater


def main():
    state, boot, url = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/")
    meta, targets = os.path.join(state, "metadata"), os.path.join(state, "targets")
    os.makedirs(meta, exist_ok=True)
    os.makedirs(targets, exist_ok=True)
    if not os.path.exists(os.path.join(meta, "root.json")):
        shutil.copyfile(boot, os.path.join(meta, "root.json"))
    try:
        # bootstrap=None: start from STATE_DIR/metadata/root.json (the bootstrap, or the root a
        # previous run verified and stored).
        updater = Updater(meta, url + "/", targets, url + "/targets/", bootstrap=None)
        updater.refresh()
        info = updater.get_targetinfo("trusted_root.json")
        if info is None:
            raise LookupError("trusted_root.json not found")
        updater.download_target(info)
    except Exception as e:  # noqa: BLE001 - any refusal is the answer
        print(f"{type(e).__name__}: {e}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
