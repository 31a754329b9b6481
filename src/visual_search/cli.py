"""Command line: `visual-search <command>`. Each command is a thin call into the core."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from visual_search.errors import ConfigurationError, VisualSearchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="visual-search", description="Self-hosted visual image search.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_build_model(commands)
    _add_verify_model(commands)
    _add_fetch_model(commands)
    _add_service_commands(commands)
    _add_redrive(commands)
    _add_backfill(commands)
    args = parser.parse_args(argv)
    from visual_search.settings import service_settings

    service_settings.cache_clear()  # a command reads the environment as it is when it runs
    try:
        return args.run(args)
    except VisualSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _add_build_model(commands) -> None:
    from visual_search.model_build.presets import FAMILY_OF  # plain data: no torch

    p = commands.add_parser(
        "build-model",
        help="turn a CLIP, SigLIP or OpenCLIP checkpoint into quantized ONNX towers + manifest "
        "(needs the `build` extra)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        type=Path,
        help="local checkpoint folder: Hugging Face CLIPModel or SiglipModel, or OpenCLIP",
    )
    source.add_argument(
        "--hub", dest="hub_id", help="hub id, e.g. openai/clip-vit-base-patch32 (needs network)"
    )
    source.add_argument("--preset", choices=list(FAMILY_OF), help="architecture with random weights")
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


def _add_fetch_model(commands) -> None:
    p = commands.add_parser(
        "fetch-model",
        help="download real CLIP from the hub and build it once into the model home (the default model)",
        description="Reads VS_MODEL_HUB (owner/name[@revision]) and VS_MODEL_HOME; needs the build extra.",
    )
    p.add_argument("--hub", help="owner/name[@revision] instead of VS_MODEL_HUB")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the build extra must be installed first to build it (what `make demo` asks)",
    )
    p.set_defaults(run=_run_fetch_model)


def _run_fetch_model(args) -> int:
    from visual_search.model_build.default_model import default_model, needs_build_extra
    from visual_search.settings import service_settings

    settings = service_settings()
    if args.hub:
        settings = settings.model_copy(update={"model_hub": args.hub})
    if args.check:
        return 1 if needs_build_extra(settings) else 0
    chosen = default_model(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    if chosen.note:
        print(chosen.note, file=sys.stderr)
        return 2
    print(chosen.folder)
    return 0


def _add_service_commands(commands) -> None:
    p = commands.add_parser("serve", help="run the local server (same API as the deployed one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--tls-cert", type=Path, help="serve https with this PEM certificate (chain)")
    p.add_argument("--tls-key", type=Path, help="the certificate's PEM private key")
    p.add_argument("--with-samples", action="store_true", help="index the generated sample images first")
    p.set_defaults(run=_run_serve)

    p = commands.add_parser("add", help="index image files and folders")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--prefix", default="", help="store under this folder")
    p.add_argument(
        "--server",
        metavar="URL",
        help="add through a running server's upload API (e.g. http://127.0.0.1:8000): no downtime",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_add)

    p = commands.add_parser("search", help="search and print a table of hits")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text")
    source.add_argument("--file", type=Path)
    source.add_argument("--url")
    source.add_argument("--asset-id")
    p.add_argument("--max-results", type=int, default=10)
    p.add_argument("--threshold", type=float, default=0.0)
    p.add_argument("--folder")
    p.add_argument("--cursor")
    p.set_defaults(run=_run_search)

    p = commands.add_parser("duplicates", help="duplicates of one asset, or a report over the collection")
    p.add_argument("--asset-id", help="only this asset's duplicates")
    p.add_argument("--threshold", type=float, help="similarity floor of the 'similar' tier")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_duplicates)


def _add_redrive(commands) -> None:
    p = commands.add_parser(
        "redrive", help="move messages from the dead-letter queue back to the ingest queue"
    )
    p.add_argument("--dlq-url", required=True)
    p.add_argument("--queue-url", required=True)
    p.add_argument("--max", type=int, help="move at most this many")
    p.add_argument("--per-second", type=float, help="rate limit")
    p.set_defaults(run=_run_redrive)


def _run_redrive(args) -> int:
    from tqdm import tqdm

    from visual_search.ingest.redrive import redrive

    with tqdm(unit="msg", file=sys.stderr) as bar:
        result = redrive(args.dlq_url, args.queue_url, args.max, args.per_second, progress=bar.update)
    print(f"moved {result.moved}; about {result.remaining_estimate} left in the dead-letter queue")
    return 0


def _add_backfill(commands) -> None:
    p = commands.add_parser(
        "backfill",
        help="index what is already in the bucket (first deployment, model change); resumable",
        description="Reads the ingest settings: VS_STORE_BACKEND, VS_BUCKET, VS_LEDGER_*, VS_MODEL_DIR.",
    )
    p.add_argument("--prefix", default="", help="only keys under this prefix")
    p.add_argument("--per-second", type=float, help="at most this many objects per second")
    p.add_argument("--batch", type=int, default=16, help="images embedded together")
    p.add_argument("--prune", action="store_true", help="also remove assets whose object is gone")
    p.add_argument(
        "--activate",
        action="store_true",
        help="once complete, finish this model's index (refresh, force merge, settings) and point readers"
        " at it (OpenSearch, with VS_OPENSEARCH_REINDEX)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_backfill)


def _run_backfill(args) -> int:
    from tqdm import tqdm

    from visual_search.bootstrap import build_ingest
    from visual_search.cli_commands import with_model
    from visual_search.ingest.backfill import backfill
    from visual_search.settings import IngestSettings

    services = build_ingest(with_model(IngestSettings()))
    try:
        _begin_load(services.index)
        with tqdm(unit="img", file=sys.stderr, disable=args.quiet) as bar:
            report = backfill(
                services.pipeline,
                services.store,
                args.prefix,
                args.per_second,
                args.batch,
                args.prune,
                progress=bar.update,
            )
        if args.activate:
            from visual_search.index.opensearch import OpenSearchIndex

            if not isinstance(services.index, OpenSearchIndex):
                raise ConfigurationError(
                    "--activate needs the OpenSearch index (one machine: restart instead)"
                )
            services.index.activate(services.index.physical_name)
    finally:
        services.close()
    outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(report.outcomes.items()))
    print(f"listed {report.listed}; {outcomes or 'nothing changed'}")
    return 0


def _begin_load(index) -> None:
    """A backfill into a new OpenSearch index (VS_OPENSEARCH_REINDEX) runs as a bulk load: the index's
    refresh off and no replica, writes not waiting for refreshes, until `--activate` finishes it."""
    from visual_search.index.opensearch import OpenSearchIndex

    if isinstance(index, OpenSearchIndex) and index.reindexing:
        index.begin_load()


def _run_serve(args) -> int:
    import logging

    from visual_search import cli_commands
    from visual_search.server import serve

    # One access-log line per request (and the server's warnings) on stderr.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from visual_search.samples import write_samples

    services = cli_commands.services_from_env()
    settings = services.settings
    if args.with_samples:
        folder = settings.data_dir / "samples"
        if not folder.is_dir():
            write_samples(folder)
        totals = cli_commands.add_files(services, [folder], prefix="samples")
        print(f"samples: {dict(totals)}", file=sys.stderr)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigurationError("--tls-cert and --tls-key go together")
    server = serve(services, args.host, args.port, args.tls_cert, args.tls_key)
    print(
        f"Visual Search on {server.url}/v1_1/{settings.cloud_name}/resources/visual_search"
        f"  ({services.index.count()} images; model {services.embedder.model_id};"
        f" api_key {settings.api_key}, api_secret in {settings.data_dir / 'credentials.json'})",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run()
    finally:
        server.socket.close()
        services.close()
    return 0


def _run_add(args) -> int:
    from visual_search import cli_commands

    if args.server:
        from visual_search.remote_add import UploadClient
        from visual_search.settings import service_settings, with_local_secrets

        settings = service_settings()
        settings = with_local_secrets(settings) if settings.api_secret is None else settings
        client = UploadClient(args.server, settings.cloud_name, settings.api_key, settings.api_secret_text)
        totals = cli_commands.add_files_through(client, args.paths, args.prefix, progress=not args.quiet)
        print(", ".join(f"{k}: {v}" for k, v in sorted(totals.items())) or "nothing to add")
        return 0
    services = cli_commands.services_from_env()
    try:
        totals = cli_commands.add_files(services, args.paths, args.prefix, progress=not args.quiet)
    finally:
        services.close()
    print(", ".join(f"{k}: {v}" for k, v in sorted(totals.items())) or "nothing to add")
    return 0


def _with_services(command_name: str):
    """A command body that runs one cli_commands function with services built from the environment."""

    def run(args) -> int:
        from visual_search import cli_commands

        services = cli_commands.services_from_env()
        try:
            return getattr(cli_commands, command_name)(services, args)
        finally:
            services.close()

    return run


_run_search = _with_services("run_search")
_run_duplicates = _with_services("run_duplicates")


if __name__ == "__main__":
    sys.exit(main())
