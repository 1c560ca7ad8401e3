"""The ``vaekit`` command line: train, encode, reconstruct, sample, evaluate, demo.

Exit codes: 0 on success, 2 on bad usage or bad input (with a one-line message), 130 when
interrupted. Heavy libraries are imported inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

from vaekit import __version__
from vaekit.errors import DataError, ParameterError, VaekitError
from vaekit.io import _suffix, errors_naming


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give widths separated by commas, e.g. 256,128") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: widths must be >= 1")
    return widths


def _read(path: str, min_rows: int = 1, numeric: bool = True):
    """Read a data file and check that it is a numeric table (unless ``numeric=False``: the
    recommended detector takes mixed tables), naming the file in any error."""
    from vaekit.io import as_matrix, read_table

    frame = read_table(path)
    if numeric:
        as_matrix(frame, str(path))
    if len(frame) < min_rows:
        raise DataError(
            f"{path}: has {len(frame)} row; training needs at least {min_rows} rows (in practice hundreds)"
        )
    return frame


def _load_model(path: str):
    """A VAE or autoencoder; a single-model detector gives its model, an ensemble is refused."""
    from vaekit.detectors import AutoencoderDetector, BaseDetector, VAEDetector
    from vaekit.persistence import load

    model = load(path)
    if isinstance(model, AutoencoderDetector | VAEDetector):
        return model.models_[0]
    if isinstance(model, BaseDetector):
        raise DataError(
            f"{path}: is a {type(model).__name__}, which scores rows but has no single model to "
            "encode, reconstruct or sample with; use 'vaekit score', or train with --model vae or ae"
        )
    return model


def _contamination(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give auto or a fraction such as 0.05") from None
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"{text!r}: the fraction must be in (0, 0.5]")
    return value


ARRAY_SUFFIXES = (".npy", ".npz")


def _checked(model, frame, path: str):
    """The rows of ``frame`` as the model's columns, with errors naming the file; images pass as
    they are (the model checks their shape)."""
    from vaekit.images import ImageData

    if isinstance(frame, ImageData):
        with errors_naming(path):
            model._scaled(frame)
        return frame
    return _checked_by(model.scaler_, frame, path)


def _is_image_source(path: str) -> bool:
    """A folder, an image file, an IDX file, or an NPY/NPZ file whose array is (n, h, w[, c])."""
    import numpy as np

    from vaekit.images import IMAGE_SUFFIXES
    from vaekit.io import npz_data_key

    p = Path(path)
    if p.is_dir():
        return True
    name = p.name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    suffix = Path(stem).suffix
    if suffix in IMAGE_SUFFIXES or "idx" in stem or suffix == ".ubyte":
        return True
    if suffix in ARRAY_SUFFIXES and p.is_file():
        try:
            if suffix == ".npy":
                return np.load(p, mmap_mode="r", allow_pickle=False).ndim >= 3
            with np.load(p, allow_pickle=False) as archive:
                return archive[npz_data_key(archive, p)].ndim >= 3
        except Exception:
            return False  # read_table will say what is wrong with it
    return False


def _read_data(path: str, min_rows: int = 1, numeric: bool = True, size=None):
    """A table (DataFrame) or, for an image source, an ImageData with its labels if it has any."""
    if _is_image_source(path):
        from vaekit.images import load_images

        data = load_images(path, size=size)
        if len(data) < min_rows:
            raise DataError(f"{path}: holds {len(data)} image; training needs at least {min_rows}")
        return data
    return _read(path, min_rows, numeric)


def _write_rows(rows, path: str, columns=None) -> None:
    """Rows (a table) or images (n, c, h, w): a PNG grid, an NPY/NPZ array, or a flat table."""
    import numpy as np
    import pandas as pd

    if Path(path).suffix.lower() == ".png":
        if np.ndim(rows) != 4:
            raise DataError(f"{path}: a PNG grid is for image models; write a table to .csv or .parquet")
        from vaekit.plots import image_grid, save_figure

        images = np.asarray(rows)
        grey = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)
        n_cols = int(np.ceil(np.sqrt(len(images))))
        save_figure(image_grid(np.clip(grey, 0, 1), n_cols=n_cols, cmap="gray"), path)
        print(f"wrote {path}", file=sys.stderr)
        return
    if np.ndim(rows) > 2:
        from vaekit.io import atomic_path, check_output_path

        if check_output_path(path) in ARRAY_SUFFIXES:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                (np.save if path.lower().endswith(".npy") else lambda f, a: np.savez(f, X=a))(
                    fh, np.asarray(rows)
                )
            print(f"wrote {path}", file=sys.stderr)
            return
        flat = np.asarray(rows).reshape(len(rows), -1)
        rows = pd.DataFrame(flat, columns=[f"p{j}" for j in range(flat.shape[1])])
    elif not isinstance(rows, pd.DataFrame):
        rows = pd.DataFrame(rows, columns=columns)
    _write(rows, path)


def _checked_by(scaler, frame, path: str):
    """The rows of ``frame`` in the columns of ``scaler``'s schema, with errors naming the file.

    The columns of an NPY or NPZ file have no names of their own (read_table calls them x0,
    x1, ...), so they are matched to the model's columns by position, not by name.
    """
    if Path(path).suffix.lower() in ARRAY_SUFFIXES:
        frame = frame.to_numpy()
    return scaler.select(frame, str(path))


def _check_output(output: str, *inputs: str) -> None:
    """Before any work: the output must be a file of a known type, and none of the inputs."""
    from vaekit.io import check_output_path

    check_output_path(output)
    out = Path(output).resolve()
    for given in inputs:
        if Path(given).resolve() == out:
            raise DataError(f"{output}: is also the input file; write the output to another file")


def _check_device(name: str) -> None:
    """Check --device before any work, so a machine without CUDA gets a message, not a traceback."""
    from vaekit.training import resolve_device

    try:
        resolve_device(name)
    except ValueError as exc:
        raise ParameterError(f"--device {name}: {exc}") from None


# -- commands ------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from vaekit.estimators import VAE, Autoencoder
    from vaekit.persistence import check_model_output
    from vaekit.training import Trainer

    out = Path(args.output)
    check_model_output(out)  # before training: a folder of the user's is never replaced
    _check_device(args.device)
    shard, rank, device = None, 0, args.device
    if args.distributed:
        from vaekit import distributed

        if args.model not in ("vae", "ae"):
            raise ParameterError("--distributed trains --model vae or ae")
        rank, world, device = distributed.init_from_env(args.device)
        with errors_naming(args.data):
            frame, shard = distributed.read_shard(args.data, rank, world)
    else:
        rows = _streamed_rows(args.data, args.memory_budget)
        frame = None if rows else _read_data(args.data, min_rows=2, numeric=args.model != "auto")
    if args.model in ("auto", "rda"):
        if args.precision != "float32":
            raise ParameterError("--precision applies to --model vae and ae")
        return _train_detector(args, frame, out, rows)
    checkpoint = out / "checkpoint"
    if not args.resume and Trainer.checkpoint_exists(checkpoint):
        logging.getLogger("vaekit").warning(
            "%s holds a checkpoint of an earlier run: starting afresh (use --resume to continue it)",
            checkpoint,
        )
    common = dict(
        latent_dim=8 if args.latent is None else args.latent,
        hidden=(256, 128) if args.hidden is None else args.hidden,
        activation=args.activation,
        dropout=args.dropout,
        norm=args.norm,
        likelihood=args.likelihood,
        binarize=args.binarize,
        scaling=args.scaling,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        precision=args.precision,
        time_limit=args.time_limit,
        weight_decay=args.weight_decay,
        validation_fraction=args.validation_fraction,
        patience=args.patience if args.patience > 0 else None,
        clip_grad_norm=args.clip_grad_norm if args.clip_grad_norm > 0 else None,
        device=device,
        random_state=args.seed,
        verbose=0 if args.quiet or rank > 0 else 1,
        checkpoint_dir=str(checkpoint),
        checkpoint_every=args.checkpoint_every,
    )
    if args.model == "vae":
        model = VAE(
            variance=args.variance,
            beta=args.beta,
            warmup_epochs=args.warmup_epochs,
            free_bits=args.free_bits,
            iwae_samples=args.iwae_samples,
            prior=args.prior,
            prior_components=args.prior_components,
            **common,
        )
    else:
        model = Autoencoder(**common)
    with errors_naming(args.data):
        if frame is None:  # larger than --memory-budget: streamed
            model.fit_file(args.data, args.memory_budget, resume=args.resume)
        else:
            model.fit(frame, resume=args.resume, shard=shard)
    if shard is not None:
        from vaekit import distributed

        if rank == 0:
            model.save(out)
        distributed.dist.barrier()
        distributed.dist.destroy_process_group()
        if rank > 0:
            # rank 0 wrote everything; leaving without the interpreter's teardown, for in that
            # teardown gloo's threads now and then abort the process ("terminate called without an
            # active exception", about 1 run in 15 here), which fails the whole torchrun job
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    else:
        model.save(out)
    last = model.history_[-1] if model.history_ else {}
    summary = {
        "model": str(out),
        "epochs": model.n_epochs_,
        "best_epoch": model.best_epoch_,
        **{k: round(v, 4) for k, v in last.items() if k.startswith(("train_", "val_")) and k != "train_loss"},
    }
    if shard is not None:
        summary["processes"] = shard.world
        summary["rows"] = shard.total
    print(json.dumps(summary))
    return 0


def _streamed_rows(path: str, memory_budget: str) -> int | None:
    """Rows per read when the table file ``path`` is larger than ``memory_budget`` (None: read it whole)."""
    from vaekit.scoring import STREAMED_SUFFIXES, batch_rows, parse_size

    p = Path(path)
    budget = parse_size(memory_budget)
    streamable = p.is_file() and p.stat().st_size > 0 and _suffix(p) in STREAMED_SUFFIXES
    if not streamable or _is_image_source(path):
        return None
    try:
        return batch_rows(p, budget)
    except Exception:
        return None  # a file that cannot be sized cannot be read: read_table says why


def _train_detector(args: argparse.Namespace, frame, out: Path, rows: int | None = None) -> int:
    """``--model auto`` (the recommended ensemble) or ``rda`` (robust deep autoencoder); a file
    larger than the memory budget (``rows`` per read) is learnt from a uniform sample of its rows."""
    from vaekit.clean import SAMPLE_ROWS
    from vaekit.detectors import AnomalyDetector, RobustAutoencoderDetector
    from vaekit.scoring import sample_table

    if frame is None:
        with errors_naming(args.data):
            frame = sample_table(args.data, SAMPLE_ROWS, rows, seed=args.seed)
        if len(frame) < frame.attrs["rows_in_file"]:  # a sample of all its rows is no news
            logging.getLogger("vaekit").warning(
                "%s: larger than --memory-budget %s; the detector learns from a uniform sample of %d "
                "of its %d rows",
                args.data,
                args.memory_budget,
                len(frame),
                frame.attrs["rows_in_file"],
            )
    common = dict(
        contamination=args.contamination,
        device=args.device,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
    )
    if args.model == "auto":
        detector = AnomalyDetector(**common)
    else:
        detector = RobustAutoencoderDetector(
            latent_dim=args.latent,
            hidden=args.hidden,
            **common,
        )
    with errors_naming(args.data):
        detector.fit(frame)
    detector.save(out)
    summary = {
        "model": str(out),
        "detector": type(detector).__name__,
        "rows": getattr(frame, "attrs", {}).get("rows_in_file", len(frame)),
        "trained_on": len(frame),
        "flagged": int(detector.labels_.sum()),
        "threshold": round(float(detector.threshold_), 6),
    }
    print(json.dumps(summary))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from vaekit.detectors import BaseDetector, wrap_model
    from vaekit.persistence import load
    from vaekit.scoring import parse_size, score_file

    _check_output(args.output, args.data)
    model = load(args.model)
    is_detector = isinstance(model, BaseDetector)
    detector = model if is_detector else wrap_model(model)
    contamination = args.contamination if is_detector else (args.contamination or "auto")
    if _is_image_source(args.data):
        summary = _score_images(detector, args.data, args.output, contamination, args.top)
    else:
        scaler = detector.scaler if is_detector else model.scaler_
        with errors_naming(args.data):
            summary = score_file(
                detector,
                args.data,
                args.output,
                memory_budget=parse_size(args.memory_budget),
                contamination=contamination,
                top=args.top,
                select=lambda frame: _checked_by(scaler, frame, args.data),
            )
    print(f"wrote {args.output}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def _score_images(detector, path: str, output: str, contamination, top: int) -> dict:
    """Images are scored in memory: one row per image, a flagged image's top pixels as the columns."""
    import pandas as pd

    from vaekit.io import write_table
    from vaekit.scoring import top_columns

    rows = _read_data(path)
    if contamination is not None:
        detector.set_threshold(rows, contamination)
    scores = detector.decision_function(rows)
    labels = (scores > detector.threshold_).astype(int)
    table = pd.DataFrame({"row": range(len(scores)), "score": scores, "label": labels})
    table = table.join(top_columns(detector, rows, labels, min(top, len(detector.feature_names))))
    write_table(table, output)
    return {"rows": len(scores), "flagged": int(labels.sum()), "threshold": float(detector.threshold_)}


def _write(data, path: str) -> None:
    from vaekit.io import write_table

    write_table(data, path)
    print(f"wrote {path}", file=sys.stderr)


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    _check_output(args.output, args.data)
    model = _load_model(args.model)
    x = _checked(model, _read_data(args.data), args.data)
    if model.config_.kind == "vae":
        mu, logvar = model.encode(x)
        k = mu.shape[1]
        table = pd.DataFrame(
            np.hstack([mu, logvar]),
            columns=[f"z_mean_{j}" for j in range(k)] + [f"z_logvar_{j}" for j in range(k)],
        )
    else:
        z = model.encode(x)
        table = pd.DataFrame(z, columns=[f"z_{j}" for j in range(z.shape[1])])
    _write(table, args.output)
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:

    _check_output(args.output, args.data)
    model = _load_model(args.model)
    x = _checked(model, _read_data(args.data), args.data)
    _write_rows(model.reconstruct(x), args.output, columns=model.scaler_.columns)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    if Path(args.output).suffix.lower() != ".png":
        _check_output(args.output)
    model = _load_model(args.model)
    if model.config_.kind != "vae":
        raise DataError(
            f"{args.model}: is a plain autoencoder, which has no prior to sample from; train with --model vae"
        )
    if args.n < 1:
        raise DataError(f"-n {args.n}: the number of samples must be >= 1")
    rows = model.sample(args.n, mean=args.mean, random_state=args.seed)
    _write_rows(rows, args.output, columns=model.scaler_.columns)
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from vaekit.explore import explore

    model = _load_model(args.model)
    data = _read_data(args.data)
    labels, names = None, None
    from vaekit.images import ImageData

    if isinstance(data, ImageData):
        labels, names = data.labels, data.class_names
        x = _checked(model, data, args.data)
    else:
        if args.labels is not None:
            if args.labels not in data.columns:
                columns = list(data.columns)
                raise DataError(
                    f"{args.data}: --labels {args.labels!r} is not a column; the columns are {columns}"
                )
            labels = data[args.labels].to_numpy()
            data = data.drop(columns=[args.labels])
        x = _checked(model, data, args.data)
    paths = explore(model, x, labels, args.output, class_names=names)
    for path in paths:
        print(path)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise ParameterError(f"-k {args.k}: the number of samples of z per row must be >= 1")
    if args.iwae < 0:
        raise ParameterError(f"--iwae {args.iwae}: the number of importance samples must be >= 1 (0 = off)")
    model = _load_model(args.model)
    x = _checked(model, _read_data(args.data), args.data)
    if model.config_.kind == "vae":
        result = model.evaluate(x, k=args.k, random_state=args.seed, iwae_k=args.iwae)
        if args.iwae:
            result["log_likelihood"] = -result["nll_iwae"]
    else:
        result = model.evaluate(x)
    result["units"] = "nats per example"
    # a diverged model can give inf or NaN: print JSON's null rather than invalid JSON
    print(
        json.dumps(
            {k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in result.items()}
        )
    )
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    from vaekit.clean import clean
    from vaekit.scoring import parse_size

    result = clean(
        args.input,
        args.output,
        model=args.model,
        contamination=args.contamination,
        label_column=args.label_column,
        drop_duplicates=args.drop_duplicates,
        copy=args.copy,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
        memory_budget=parse_size(args.memory_budget),
        orientation=False if args.any_orientation else "auto",
        framing=False if args.any_framing else "auto",
        sharpness=False if args.any_sharpness else "auto",
        garbage_classifier=not args.no_garbage_classifier,
        bend_long_tails=not args.flag_long_tails,
        encoding=args.encoding,
    )
    print(f"vaekit clean: {result.summary()}")
    if result.metrics:
        m = result.metrics
        print(
            f"against --label-column {args.label_column}: recall {m['recall']:.3f}, precision "
            f"{m['precision']:.3f}, AUROC {m['auroc']:.3f}, AUPRC {m['auprc']:.3f}"
        )
    print(f"wrote {result.outputs['clean']}, {result.outputs['garbage']}; report: {result.outputs['report']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    verbose = 0 if args.quiet else 1
    if args.vae:
        from vaekit.demo import run_vae_demo

        metrics = run_vae_demo(args.output, epochs=args.epochs, seed=args.seed, verbose=verbose)
        out = metrics["out_dir"]
        print(
            f"VAE on scikit-learn's digits, {metrics['epochs']} epochs: test -ELBO "
            f"{metrics['neg_elbo']:.2f} nats (reconstruction {metrics['reconstruction']:.2f}, "
            f"KL {metrics['kl']:.2f}); IWAE log p(x) (k=1000) {metrics['log_likelihood_iwae_k1000']:.2f} nats"
        )
        print(f"pictures: {out}/samples.png, {out}/reconstructions.png, {out}/loss.png; model: {out}/model")
        return 0
    from vaekit.demo import run_clean_demo

    m = run_clean_demo(args.output, seed=args.seed, verbose=verbose)
    kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in m["recall_per_kind"].items())
    print(
        f"scikit-learn's digits as {m['images']} PNG files in {m['out_dir']}/input, {m['injected']} of them "
        f"injected garbage (listed in {m['out_dir']}/injected.csv)"
    )
    print(f"vaekit clean: {m['summary']}")
    print(
        f"on the injected garbage: recall {m['recall']:.3f}, precision {m['precision']:.3f}; good images "
        f"removed {m['good_removed']:.1%}; found per kind: {kinds}"
    )
    print(f"report: {m['report']}")
    return 0


# -- parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaekit",
        description="Autoencoders and variational autoencoders on PyTorch.",
    )
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_help = (
        "a CSV (with a header), Parquet, NPY or NPZ file of numbers, or images: an IDX file (MNIST's "
        "format, its label file found beside it), an NPY/NPZ array of images, a folder of PNG/JPEG files"
    )
    out_help = "output file: .csv, .parquet, .npy or .npz"

    p = sub.add_parser(
        "train",
        help="train an AE or a VAE on a data file",
        description="Train a model on DATA and save it to the folder MODEL_DIR.",
    )
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("-o", "--output", metavar="MODEL_DIR", required=True, help="folder for the model")
    p.add_argument(
        "--model",
        choices=["vae", "ae", "auto", "rda"],
        default="vae",
        help="vae or ae: a model to encode, reconstruct, sample and score with; auto (the recommended "
        "anomaly detector) or rda (robust deep autoencoder): detectors for 'vaekit score' (default vae)",
    )
    p.add_argument(
        "--contamination",
        type=_contamination,
        default="auto",
        help="detectors: the share of rows to flag, or auto (default)",
    )
    p.add_argument(
        "--latent",
        type=int,
        default=None,
        help="latent dimensions K (default 8; detectors: chosen from the column count)",
    )
    p.add_argument(
        "--hidden",
        type=_hidden,
        default=None,
        help="hidden widths, e.g. 256,128 (the default; detectors: chosen from the column count)",
    )
    p.add_argument("--activation", default="relu", help="relu, gelu, silu, tanh, elu, leaky_relu, softplus")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--norm", choices=["none", "batch", "layer"], default="none")
    p.add_argument(
        "--likelihood",
        choices=["auto", "bernoulli", "made", "gaussian"],
        default="auto",
        help="p(x|z) (VAE) or loss (AE): auto = bernoulli if all values are in [0,1]; made = "
        "autoregressive pixels (VAE, MLP)",
    )
    p.add_argument(
        "--binarize",
        action="store_true",
        help="dynamic binarization: draw binary pixels x ~ Bernoulli(x) afresh at every training pass",
    )
    p.add_argument(
        "--variance",
        choices=["feature", "decoder"],
        default="feature",
        help="Gaussian variance learned per feature or given by the decoder per example",
    )
    p.add_argument("--scaling", choices=["auto", "standard", "robust", "minmax", "none"], default="auto")
    p.add_argument("--beta", type=float, default=1.0, help="KL weight in training (default 1)")
    p.add_argument("--warmup-epochs", type=int, default=0, help="epochs of linear KL warm-up")
    p.add_argument("--free-bits", type=float, default=0.0, help="free bits per latent unit, nats")
    p.add_argument(
        "--prior",
        choices=["normal", "mixture"],
        default="normal",
        help="VAE: p(z), N(0, I) or a learned mixture of Gaussians (default normal)",
    )
    p.add_argument(
        "--prior-components", type=int, default=100, metavar="C", help="components of a mixture prior"
    )
    p.add_argument(
        "--iwae-samples",
        type=int,
        default=1,
        metavar="K",
        help="VAE: train on the importance-weighted bound with K samples (default 1 = the ELBO)",
    )
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="cosine anneals the learning rate to 0 over the epochs (or --time-limit)",
    )
    p.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="bfloat16: mixed-precision training (vae, ae), faster on CPUs and GPUs with bfloat16 units",
    )
    p.add_argument("--time-limit", type=float, default=None, help="stop training after this many seconds")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training under torchrun (vae, ae): each process reads its share of the "
        "rows; gloo on CPUs, NCCL on GPUs (torchrun --nproc_per_node=2 -m vaekit train ... --distributed)",
    )
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--patience", type=int, default=10, help="early-stopping patience (0 = off)")
    p.add_argument("--clip-grad-norm", type=float, default=10.0, help="gradient clipping (0 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--checkpoint-every", type=int, default=1, help="save the training state every N epochs")
    p.add_argument("--resume", action="store_true", help="continue from MODEL_DIR/checkpoint")
    p.add_argument(
        "--memory-budget",
        default="1G",
        metavar="SIZE",
        help="a CSV, Parquet or NPY table larger than this (e.g. 512M, 4G) is streamed: vae and ae "
        "read it in record batches every epoch (statistics in one first pass, windows of rows "
        "shuffled together); auto and rda learn from a uniform sample of 200,000 rows (default 1G)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "encode",
        help="write the latent code of each row",
        description="Write z_mean_* and z_logvar_* (VAE) or z_* (AE) for each row of DATA.",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help=out_help)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser(
        "reconstruct",
        help="write the reconstruction of each row",
        description="Write the model's reconstruction of each row of DATA, same columns.",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help=out_help)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser(
        "sample",
        help="generate new rows from a VAE",
        description="Draw z ~ N(0, I) and x ~ p(x|z): N new rows with the training columns.",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("-n", type=int, required=True, help="how many rows")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help=out_help + "; .png: a grid (image models)"
    )
    p.add_argument("--mean", action="store_true", help="write the mean of p(x|z) instead of a draw")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "evaluate",
        help="print the -ELBO, reconstruction and KL as JSON",
        description="Print JSON with neg_elbo, reconstruction and kl in nats per example.",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("-k", type=int, default=1, help="samples of z per row for the ELBO (default 1)")
    p.add_argument(
        "--iwae",
        type=int,
        default=0,
        metavar="K",
        help="also the importance-weighted log p(x) with K samples",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "score",
        help="score each row: anomaly score, label, the columns that made it anomalous",
        description="Write row, score (higher = more anomalous), label (1 = flagged at the threshold) and "
        "the top contributing columns with their shares of the score, for each row of DATA. A detector "
        "(train --model auto or rda) uses its threshold from training; a VAE scores by -ELBO and an "
        "autoencoder by reconstruction error, with the threshold set on DATA by --contamination.",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help=out_help)
    p.add_argument(
        "--contamination",
        type=_contamination,
        default=None,
        help="set the threshold on DATA: a fraction, or auto (for a table detector of --model auto: "
        "the two fences it learnt in training) (default: the detector's own)",
    )
    p.add_argument(
        "--top",
        type=int,
        default=3,
        help="how many contributing columns to list for each flagged row (default 3)",
    )
    p.add_argument(
        "--memory-budget",
        default="1G",
        metavar="SIZE",
        help="a table larger than this (e.g. 512M, 4G) is read and scored in record batches, its scores "
        "written as they come, so memory stays flat however long the file is (default 1G)",
    )
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "explore",
        help="pictures of what a VAE learned: reconstructions, samples, latent space, traversals",
        description="Write PNG pictures of MODEL_DIR on DATA into OUTDIR: the latent means coloured by "
        "label (2 principal components for K > 2), training curves and, for image models, reconstructions, "
        "samples from the prior, interpolations, latent traversals and (K = 2) the decoded latent grid.",
    )
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("data", metavar="DATA", help=data_help)
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the PNG files")
    p.add_argument("--labels", metavar="COL", default=None, help="tables: a column of labels to colour by")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser(
        "clean",
        help="split a data set into clean rows and garbage, with a report",
        description="Find the garbage in INPUT (a CSV file, gzipped or not, a Parquet file or a folder of "
        "images): train "
        "the recommended detector on it (or use --model), score every row, and write OUTDIR/clean.<ext> and "
        "OUTDIR/garbage.<ext> in the input's format, column order and row order (kept rows unchanged; "
        "garbage rows with their score, rank, reason and top columns), OUTDIR/scores.csv, OUTDIR/model/ "
        "and OUTDIR/report.html. Rows that cannot be parsed are garbage, with the reason. The input is "
        "never modified.",
    )
    p.add_argument(
        "input",
        metavar="INPUT",
        help="a CSV file (.csv, .tsv, .csv.gz), a Parquet file or a folder of images",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the outputs")
    p.add_argument("--model", metavar="MODEL_DIR", default=None, help="a detector from 'vaekit train'")
    p.add_argument(
        "--contamination",
        type=_contamination,
        default="auto",
        help="the share of rows to remove, or auto (default: estimated from the scores)",
    )
    p.add_argument(
        "--label-column",
        metavar="COL",
        default=None,
        help="a known 0/1 column (1 = garbage), used only for the report's metrics, never for training",
    )
    p.add_argument("--drop-duplicates", action="store_true", help="exact duplicate rows go to garbage")
    p.add_argument(
        "--encoding",
        default=None,
        help="a CSV file's text encoding, e.g. cp1252 or latin-1 (default: UTF-8, or cp1252 when the "
        "file's start says so, as Windows programs write it)",
    )
    p.add_argument("--copy", action="store_true", help="image folders: copy files into clean/ and garbage/")
    p.add_argument(
        "--any-orientation",
        action="store_true",
        help="image folders: turned images are fine here; do not judge which way up an image is",
    )
    p.add_argument(
        "--any-framing",
        action="store_true",
        help="image folders: close-ups and crops are fine here; do not judge how closely an image is framed",
    )
    p.add_argument(
        "--any-sharpness",
        action="store_true",
        help="image folders: images blown up from small ones, blurred or sharpened are fine here; do not "
        "compare the spectrum of their detail",
    )
    p.add_argument(
        "--no-garbage-classifier",
        action="store_true",
        help="tables: leave out the classifier of copies of the rows spoilt the ways pipelines spoil "
        "data (a field shifted, swapped, copied, a sentinel, noise); faster, and kinder to rare but "
        "genuine rows",
    )
    p.add_argument(
        "--flag-long-tails",
        action="store_true",
        help="tables: judge a long-tailed number column as it is scaled, not bent about "
        "logarithmically, so that its largest values (an amount over several powers of ten) may be "
        "flagged as the far tail they are",
    )
    p.add_argument(
        "--memory-budget",
        default="1G",
        metavar="SIZE",
        help="a CSV or Parquet file larger than this (e.g. 512M, 4G) is read in batches: the detector "
        "learns from a uniform sample of its rows, and the outputs are written batch by batch "
        "(default 1G)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser(
        "demo",
        help="the main job on an embedded data set, no file needed",
        description="Clean scikit-learn's bundled digits with garbage injected (noise, blank, inverted and "
        "corrupted images) and print the recall and precision on it; --vae instead trains a VAE on the "
        "digits and writes samples, reconstructions and curves.",
    )
    p.add_argument("-o", "--output", default="vaekit-demo", metavar="DIR", help="default ./vaekit-demo")
    p.add_argument("--vae", action="store_true", help="the generative demo: a VAE on the digits")
    p.add_argument("--epochs", type=int, default=300, help="--vae: training epochs (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="vaekit: %(message)s")
    try:
        return args.func(args)
    except VaekitError as exc:
        print(f"vaekit: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unwritable output, a full disk, a file that vanished...
        place = f"{exc.filename}: " if exc.filename else ""
        print(f"vaekit: error: {place}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
