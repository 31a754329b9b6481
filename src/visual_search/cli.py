"""Command line: `visual-search <command>`. Each command is a thin call into the core."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visual_search.errors import VisualSearchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="visual-search", description="Self-hosted visual image search.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_build_model(commands)
    _add_verify_model(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except VisualSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _add_build_model(commands) -> None:
    p = commands.add_parser(
        "build-model",
        help="turn a CLIP checkpoint into quantized ONNX towers + manifest (needs the `build` extra)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="local Hugging Face CLIPModel folder")
    source.add_argument(
        "--hub", dest="hub_id", help="hub id, e.g. openai/clip-vit-base-patch32 (needs network)"
    )
    source.add_argument("--preset", choices=["tiny", "vit-b-32"], help="architecture with random weights")
    p.add_argument("--seed", type=int, default=0, help="seed for --preset weights")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist unless --force)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument(
        "--precisions", default="fp32,int8", help="which towers to keep: fp32,int8 (default) or int8"
    )
    p.set_defaults(run=_run_build_model)


def _run_build_model(args) -> int:
    try:
        from visual_search.model_build import BuildRefused
        from visual_search.model_build.build import BuildRequest, build_model
    except ImportError as exc:
        print(
            f"error: the build extra is not installed ({exc.name}): pip install 'visual-search[build]'",
            file=sys.stderr,
        )
        return 2
    request = BuildRequest(
        out=args.out,
        checkpoint=args.checkpoint,
        hub_id=args.hub_id,
        preset=args.preset,
        seed=args.seed,
        force=args.force,
        precisions=tuple(p.strip() for p in args.precisions.split(",") if p.strip()),
    )
    try:
        build_model(request, log=lambda msg: print(msg, file=sys.stderr))
    except BuildRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_verify_model(commands) -> None:
    p = commands.add_parser("verify-model", help="check a model folder's files against its manifest")
    p.add_argument("folder", type=Path)
    p.set_defaults(run=_run_verify_model)


def _run_verify_model(args) -> int:
    from visual_search.embedding.manifest import Manifest

    manifest = Manifest.load(args.folder)
    manifest.verify_all()
    print(f"ok: {manifest.model_id}, dim {manifest.embedding_dim}, {len(manifest.files)} files verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
