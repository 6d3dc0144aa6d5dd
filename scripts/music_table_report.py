"""The report of `music_table.py`: a summary of the job records, as JSON, Markdown and a plot."""

import os
import statistics

import keras

from keras_deeprnn import _files
from keras_deeprnn import run_folder
from keras_deeprnn.data import load_music
from keras_deeprnn.tasks.paper import PAPER_MUSIC_BEST
from keras_deeprnn.tasks.paper import PAPER_MUSIC_NLL


def summarise(study, seconds):
    """Everything the report shows, from the records alone (nothing is re-run)."""
    import music_table as table

    datasets, budget = {}, {"searches": 0, "trials": 0, "finals": 0, "seconds": 0.0}
    pending, done, todo, frames = [], [], [], {}
    failed, blocked = [], []
    for dataset in study.datasets:
        file, column = table.DATASETS[dataset]
        data = load_music(study.path(dataset), limit=table.QUICK["limit"] if study.quick else None)
        frames[dataset] = sum(len(piece) for piece in data["train"])
        search_settings = sorted(study.search_settings(dataset).items())
        final_settings = sorted(study.final_settings(dataset).items())
        searches = {}
        models = study.models(dataset)
        for key in models:
            record = study.record(dataset, f"search-{key}")
            job = dict(dataset=dataset, kind="search", key=key, settings=search_settings)
            if record is None:
                if not _unfinished(study, dataset, f"search-{key}", failed, blocked):
                    pending.append(f"{dataset}: search-{key}")
                    todo.append(job)
                continue
            searches[key] = record
            fit = sum(t["fit_seconds"] or 0.0 for t in record["trials"])
            done.append(dict(job, seconds=fit))
            budget["searches"] += 1
            budget["trials"] += len(record["trials"])
            budget["seconds"] += fit
        complete = all(study.settled(dataset, f"search-{key}") for key in models)
        finalists = study.finalists(dataset) if complete else list(table.ROWS)
        best_key = study.best_search(dataset) if complete else None
        rows = []
        for key in finalists:
            seeds, failed_seeds, blocked_by = [], [], []
            for seed in study.seeds:
                record = study.record(dataset, f"final-{key}-seed{seed}")
                job = dict(dataset=dataset, kind="final", key=key, settings=final_settings)
                if record is None:
                    state = _unfinished(study, dataset, f"final-{key}-seed{seed}", failed,
                                        blocked)
                    if state == "failed":
                        failed_seeds.append(seed)
                    elif state:
                        blocked_by += [need for need in state if need not in blocked_by]
                    else:
                        pending.append(f"{dataset}: final-{key}-seed{seed}")
                        todo.append(job)
                    continue
                done.append(dict(job, seconds=record["train_time_s"]))
                seeds.append(record)
                budget["finals"] += 1
                budget["seconds"] += record["train_time_s"]
            rows.append(_row(key, column, seeds, searches.get(key), study.seeds,
                             best=key == best_key, failed_seeds=failed_seeds,
                             blocked_by=blocked_by))
        datasets[dataset] = dict(
            file=file, column=column, sha256=run_folder.fingerprint(study.path(dataset)), rows=rows,
            note_frequency_nll=note_frequency_nll(data),
            best=best_key, searches=searches,
            paper_best=PAPER_MUSIC_NLL[PAPER_MUSIC_BEST][column] if column else None)
    budget["seconds"] = round(budget["seconds"], 1)
    left = {name: remaining_seconds(done, [job for job in todo if job["dataset"] == name], frames)
            for name in study.datasets}
    return dict(quick=study.quick, backend=keras.backend.backend(),
                keras_version=keras.__version__, seeds=list(study.seeds), datasets=datasets,
                pending=pending, failed=failed, blocked=blocked, budget=budget,
                cpu_count=os.cpu_count(),
                remaining=dict(seconds=round(sum(s for s, _ in left.values()), 1),
                               estimated=sum(n for _, n in left.values()), jobs=len(todo),
                               by_dataset={name: round(s, 1) for name, (s, _) in left.items()},
                               training_frames=frames),
                this_invocation_seconds=round(seconds, 1),
                settings=dict(search={d: study.search_settings(d) for d in study.datasets},
                              final={d: study.final_settings(d) for d in study.datasets}))


def _unfinished(study, dataset, job, failed, blocked):
    """What keeps a job without a record from the table: `"failed"` if it
    failed (noted in `failed`), the failed jobs it needs if any (noted in
    `blocked`), else `None`: it is still to run."""
    failure = study.failure(dataset, job)
    if failure is not None:
        failed.append(dict(
            dataset=dataset, job=job, error=failure.get("error"), message=failure.get("message"),
            failed_at=failure.get("failed_at"),
            file=study.failure_path(dataset, job).relative_to(study.results).as_posix()))
        return "failed"
    needs = [f"{d}: {j}" for d, j in study.failed_prerequisites(dataset, job)]
    if needs:
        blocked.append(dict(dataset=dataset, job=job, needs=needs))
    return needs or None


def _row(key, column, seeds, search, all_seeds, *, best, failed_seeds=(), blocked_by=()):
    import music_table as table

    name = table.ROWS.get(key, key)
    paper = PAPER_MUSIC_NLL[name][column] if key in table.ROWS and column else None
    test = [r["test"]["nll"] for r in seeds]
    later = [r["test"]["nll_without_first_frame"] for r in seeds]
    row = dict(key=key, model=name, paper_nll=paper, best_of_collection=best,
               seeds=[r["seed"] for r in seeds], complete=len(seeds) == len(all_seeds),
               test_nll=test, valid_nll=[r["best_valid"] for r in seeds],
               nll_without_first_frame=later,
               chosen=search["best"]["values"] if search else None,
               parameters=seeds[0]["parameters"] if seeds else None,
               epochs=[r["epochs_run"] for r in seeds], best_epochs=[r["best_epoch"] for r in seeds],
               stopped_early=[r["stopped_early"] for r in seeds],
               train_time_s=[r["train_time_s"] for r in seeds],
               curves=[r["curves"] for r in seeds],
               failed_seeds=list(failed_seeds), blocked_by=list(blocked_by))
    if test:
        row.update(mean=statistics.fmean(test),
                   std=statistics.stdev(test) if len(test) > 1 else 0.0,
                   mean_without_first_frame=statistics.fmean(later))
        row["gap"] = row["mean"] - paper if paper is not None else None
    return row


def remaining_seconds(done, todo, frames):
    """Training seconds the jobs in `todo` should take, at the pace of those `done`.

    Jobs are dicts of `dataset`, `kind` ("search" or "final"), `key` and
    `settings` (the schedule); finished ones add `seconds`. Each job to do
    takes, in this order of preference, the mean time of the finished jobs of
    its kind and key on its data set; of its kind and key on other data sets
    with the same schedule, scaled by training frames (`frames[dataset]`); of
    its kind on its data set; of its kind on the same schedule, scaled.
    Returns `(seconds, estimated)`: `estimated` counts the jobs with any
    finished job to go by (the others add nothing).
    """
    total, estimated = 0.0, 0
    for job in todo:
        same_kind = [d for d in done if d["kind"] == job["kind"]]
        rules = (
            (lambda d: d["key"] == job["key"] and d["dataset"] == job["dataset"], False),
            (lambda d: d["key"] == job["key"] and d["settings"] == job["settings"], True),
            (lambda d: d["dataset"] == job["dataset"], False),
            (lambda d: d["settings"] == job["settings"], True))
        for matches, scaled in rules:
            like = [d for d in same_kind if matches(d)]
            if like:
                pace = statistics.fmean(
                    d["seconds"] / frames[d["dataset"]] if scaled else d["seconds"] for d in like)
                total += pace * frames[job["dataset"]] if scaled else pace
                estimated += 1
                break
    return total, estimated


def note_frequency_nll(data):
    """Test NLL of a model with no past over `data` (`load_music`'s splits):
    each note at its training frequency.

    Probabilities are clipped to `[1e-7, 1 - 1e-7]`, as `frame_nll` clips.
    """
    import numpy as np

    from keras_deeprnn.metrics import frame_nll

    rate = np.concatenate(data["train"]).mean(axis=0)
    test = np.concatenate(data["test"])
    return frame_nll(np.broadcast_to(rate, test.shape), test)


def _cell(row):
    failed = row.get("failed_seeds") or []
    if row.get("blocked_by"):
        # Its search, or a search that its search starts from, failed.
        return f"cannot run: {', '.join(row['blocked_by'])} failed"
    if not row.get("test_nll"):
        return f"failed ({_seeds(failed)})" if failed else "not yet run"
    also = f"; {_seeds(failed)} failed" if failed else ""
    if len(row["test_nll"]) == 1:
        # One seed has no spread to show.
        return f"{row['mean']:.3f} (seed {row['seeds'][0]} only{also})"
    text = f"{row['mean']:.3f} ± {row['std']:.3f}"
    if not row["complete"]:
        text += f" (seeds {', '.join(map(str, row['seeds']))} only{also})"
    return text


def _seeds(seeds):
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def overview(summary):
    """The table of rows by data set, each cell `mean ± std (paper)`, as Markdown lines."""
    import music_table as table

    names = list(summary["datasets"])
    header = ["model", *[summary["datasets"][d]["column"] or f"{d} (not in the paper)"
                         for d in names]]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for key in table.ROWS:
        cells = [table.ROWS[key]]
        for dataset in names:
            info = summary["datasets"][dataset]
            row = next((r for r in info["rows"] if r["key"] == key), None)
            cell = _cell(row) if row else "not yet run"
            if row and row.get("paper_nll") is not None:
                cell += f" ({row['paper_nll']:.3f})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["collection's best"]
    for dataset in names:
        info = summary["datasets"][dataset]
        row = next((r for r in info["rows"] if r["best_of_collection"]), None)
        cell = f"{_cell(row)}, {row['model']}" if row else "not yet chosen"
        if info["paper_best"] is not None:
            cell += f" ({info['paper_best']:.2f}, {PAPER_MUSIC_BEST})"
        cells.append(cell)
    return lines + ["| " + " | ".join(cells) + " |", ""]


def tally(summary):
    """The table against the paper in a few sentences, as Markdown lines: which
    of the paper's cells are at or below its figure, which are above it and by
    how much, which have not finished every seed, and the same for the
    collection's best against the paper's best row. Cells count only once
    every seed has a figure."""
    met, short, open_ = [], [], []
    best_met, best_short, best_open = [], [], []
    for info in summary["datasets"].values():
        column = info["column"]
        if column is None:
            continue
        for row in info["rows"]:
            finished = bool(row.get("test_nll")) and row["complete"]
            if row.get("paper_nll") is not None:
                name = f"{column} {row['model']}"
                if not finished:
                    open_.append(name)
                elif row["gap"] <= 0:
                    met.append(f"{name}, {row['mean']:.3f} against {row['paper_nll']:.3f}")
                else:
                    short.append(row["gap"])
            if row["best_of_collection"] and info["paper_best"] is not None:
                if not finished:
                    best_open.append(column)
                elif row["mean"] <= info["paper_best"]:
                    best_met.append(f"{column}, {row['mean']:.3f} against "
                                    f"{info['paper_best']:.2f}")
                else:
                    best_short.append(row["mean"] - info["paper_best"])
    cells = len(met) + len(short) + len(open_)
    if not cells:
        return []
    parts = [f"{len(met)} {'is' if len(met) == 1 else 'are'} at or below the paper's figure"
             + (f" ({'; '.join(met)})" if met else "")]
    if short:
        parts.append(f"{len(short)} {'is' if len(short) == 1 else 'are'} above it, by "
                     f"{_spread(short)}")
    if open_:
        parts.append(f"{len(open_)} {'has' if len(open_) == 1 else 'have'} not finished every "
                     f"seed ({', '.join(open_)})")
    text = f"Against the paper: of its {cells} cells in this table, {_series(parts)}."
    sets = len(best_met) + len(best_short) + len(best_open)
    if sets:
        best = [f"at or below the paper's best on {len(best_met)} of its {sets} sets"
                + (f" ({'; '.join(best_met)})" if best_met else "")]
        if best_short:
            best.append(f"above it on {len(best_short)}, by {_spread(best_short)}")
        if best_open:
            best.append(f"not finished on {', '.join(best_open)}")
        text += f" The collection's best is {_series(best)}."
    return [text, ""]


def _count(number, noun):
    """`1 job`, `3 jobs`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _spread(gaps):
    """`0.179`, or `0.055 to 1.011` for several."""
    if len(gaps) == 1:
        return f"{gaps[0]:.3f}"
    return f"{min(gaps):.3f} to {max(gaps):.3f}"


def _series(parts):
    """`a`, `a and b`, `a, b, and c`."""
    if len(parts) < 3:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


# The study runs on two workers and was sized to finish within a working
# day on them.
WORKERS = 2
WORKING_DAY_HOURS = 8


def _worker_hours(seconds):
    """Hours on the study's workers for `seconds` of fit time, shared between them."""
    return seconds / 3600 / WORKERS


README_START = "<!-- music table: written by scripts/music_table.py --readme -->"
README_END = "<!-- end of music table -->"


def fill_readme(summary, path):
    """Put `overview` and what is left to run between the README's two markers."""
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path} lacks the markers {README_START!r} and {README_END!r}")
    pending = len(summary["pending"])
    left = summary.get("remaining")
    hours = (f" (about {_count(round(_worker_hours(left['seconds'])), 'hour')} of training "
             "on its two workers, "
             "at the pace of the finished jobs)" if left and left["seconds"] else "")
    note = (f"{_count(pending, 'job')} of the study {'is' if pending == 1 else 'are'} still to "
            f"run{hours}; cells without a figure "
            "have not run yet." if pending else "Every job of the study has run.")
    failed, blocked = summary.get("failed", []), summary.get("blocked", [])
    if failed:
        note += (f" {len(failed)} of its jobs failed"
                 + (f" and {len(blocked)} cannot run without them" if blocked else "")
                 + "; `results/music_table.md` lists them with their errors, and the cells "
                 "that need them have no figure.")
    block = "\n".join([README_START, "", *overview(summary), *tally(summary), note, "",
                       README_END])
    head, rest = text.split(README_START, 1)
    _files.write_text(path, head + block + rest.split(README_END, 1)[1])


def markdown(summary):
    """The Markdown report of `summarise`'s summary."""
    lines = ["# The music table of Pascanu et al. (2013) on the paper's data", "",
             "Made by `KERAS_BACKEND=jax python scripts/music_table.py --data-dir DIR --worker "
             "K/2` (K = 0 and 1, one thread each) and written from the job records by "
             "`--report-only`; `DIR` holds the four MATLAB files (checksums below).", ""]
    if summary["quick"]:
        lines += ["**Smoke run (`--quick`): tiny models, one or two epochs, 3 pieces per "
                  "split. The numbers mean nothing.**", ""]
    if summary["pending"]:
        lines += [f"**Unfinished: {_count(len(summary['pending']), 'job')} still to run** "
                  "(the study resumes where it stopped; the list is at the end). Cells marked "
                  "*not yet run* have no figure yet.", ""]
    if summary.get("failed"):
        blocked = summary.get("blocked", [])
        lines += [f"**Failed: {len(summary['failed'])} jobs**"
                  + (f", and {len(blocked)} that need them cannot run" if blocked else "")
                  + " (listed under *Failed jobs*, with their errors). Their cells have no "
                  "figure, or fewer seeds.", ""]
    lines += [
        "Test negative log-likelihood per frame (nats, lower is better), the mean ± standard "
        f"deviation over seeds {summary['seeds']}, averaged over every time step of the test "
        "pieces: the first frame of a piece is predicted from the model's initial state, as "
        "the data sets' authors ask. Configurations were chosen on the validation split by "
        "KerasTuner searches; the test split was scored once per final run. The paper's "
        "figure follows in brackets.", ""]
    names = list(summary["datasets"])
    lines += overview(summary)
    lines += tally(summary)
    lines += _shortfalls(summary)
    for dataset in names:
        lines += _dataset_section(summary["datasets"][dataset], dataset, summary)
    lines += ["## Budget", "", _budget(summary), "", *_outlook(summary), "## Settings", ""]
    for dataset in names:
        search, final = summary["settings"]["search"][dataset], summary["settings"]["final"][
            dataset]
        lines.append(f"- {dataset}: searches {_settings(search)}; finals {_settings(final)}.")
    lines += ["", "Every model: Adam with gradient-norm clipping at 1, sparse initialisation of "
              "the recurrent weights (the paper's: 20 inputs per unit, largest singular value "
              "1); finals halve the learning rate after `lr_patience` epochs without a better "
              "validation NLL, stop early after `patience`, and are scored with the best "
              "validation epoch's weights. Searches stop each trial early after `patience` "
              "epochs and keep its best validation NLL.", "",
              "## Differences from the paper", "",
              "- Adam on batches of 2 pieces instead of SGD, and capped epochs, so the study "
              "runs on 2 CPU cores.",
              "- Searches of a few trials per row (widest on JSB Chorales) instead of the "
              "paper's per-model search. On the larger sets a trial runs a short schedule "
              "(the settings above) and stops after a few epochs without a better validation "
              "NLL, so a configuration can lose its search on a plateau it would have left "
              "(the trial tables give each trial's best epoch).",
              "- Each figure is a mean over seeds, with its spread; the paper reports one run.",
              ""]
    lines += _failures(summary)
    if summary["pending"]:
        lines += ["## Still to run", "", ", ".join(summary["pending"]), ""]
    return "\n".join(lines)


def _failures(summary):
    """The failed jobs with their errors, and the jobs they keep from running."""
    failed, blocked = summary.get("failed", []), summary.get("blocked", [])
    if not failed:
        return []
    lines = ["## Failed jobs", "",
             "Each of these jobs raised an error, and left a record of it (the file named, "
             "under the results folder, with the traceback) instead of a result; no worker "
             "takes it again. To retry one, delete its failure record (and its run folder "
             "under `--runs-dir`, to start it afresh rather than resume it) and run the study "
             "again.", ""]
    for job in failed:
        message = " ".join(str(job["message"]).split())
        lines.append(f"- {job['dataset']}: {job['job']}: `{job['error']}`: {message} "
                     f"(at {job['failed_at']}; `{job['file']}`)")
    if blocked:
        lines += ["", "Jobs that cannot run because a job they need failed:", ""]
        lines += [f"- {job['dataset']}: {job['job']} (needs {', '.join(job['needs'])})"
                  for job in blocked]
    return lines + [""]


def _budget(summary):
    """The training the records hold, in minutes and in hours on the two workers."""
    budget = summary["budget"]
    hours = _worker_hours(budget["seconds"])
    day = (", longer than the working day the study was sized for"
           if not summary["pending"] and hours > WORKING_DAY_HOURS else "")
    return (f"{budget['searches']} searches ({budget['trials']} trials) and "
            f"{budget['finals']} final runs, {budget['seconds'] / 60:.1f} minutes of training "
            "in all (the sum of every trial's and run's fit time, kept in the job records, so "
            "a later call that finds the jobs done reports the same), about "
            f"{hours:.1f} hours on the two workers{day}; backend "
            f"{summary['backend']}, Keras {summary['keras_version']}, one thread per worker "
            f"on a machine with {summary['cpu_count']} cores. Fit times are wall-clock "
            "time on a shared machine: they grow with other work on its cores and take in "
            "any time a worker was paused mid-epoch, so runs of one model can differ by "
            "more than their training did. The call that wrote this "
            f"report took {summary['this_invocation_seconds'] / 60:.1f} minutes.")


def _outlook(summary):
    """What is left, in hours, and the whole study's length, as Markdown lines."""
    left = summary.get("remaining")
    if not summary["pending"] or not left:
        return []
    hours = left["seconds"] / 3600
    whole = _worker_hours(left["seconds"] + summary["budget"]["seconds"])
    unknown = left["jobs"] - left["estimated"]
    return [f"Still to run: {left['jobs']} jobs, about {hours:.1f} hours of training at the "
            "pace of the finished jobs (each job timed by the finished jobs of the same model "
            "on its data set, else on the data sets with the same schedule scaled by their "
            "training frames), so about "
            f"{_worker_hours(left['seconds']):.1f} hours on the two workers, and about "
            f"{whole:.1f} "
            "hours for the whole study, counting fit time only (compiling, scoring and "
            "evaluation add to it)."
            + (" That is longer than the working day the study was sized for." if
               whole > WORKING_DAY_HOURS else "")
            + " Left per data set, in hours of training: "
            + ", ".join(f"{name} {seconds / 3600:.1f}"
                        for name, seconds in left["by_dataset"].items() if seconds) + "."
            + " Not counted: the finals of a collection's best still to be chosen"
            + (f", and {unknown} jobs with no finished job to go by." if unknown else "."),
            ""]


def _why(row, search, summary, dataset):
    """What held a cell back that the records show: schedules cut by their epoch caps."""
    notes = []
    cap = summary["settings"]["final"][dataset]["epochs"]
    capped = [f"{seed} (best epoch {best})" for seed, run, best, early in zip(
        row["seeds"], row["epochs"], row["best_epochs"], row["stopped_early"])
        if run >= cap and not early]
    if capped:
        notes.append(f"its final runs ended at the {cap}-epoch cap before early stopping, "
                     f"still improving: seed {', '.join(capped)}")
    if search:
        limit = summary["settings"]["search"][dataset]["epochs"]
        peaked = [t for t in search["trials"] if t.get("best_epoch") == limit]
        if peaked:
            notes.append(f"{len(peaked)} of its {len(search['trials'])} search trials "
                         f"{'was' if len(peaked) == 1 else 'were'} still improving at the "
                         f"search's {limit}-epoch cap")
    return "".join(f"; {note}" for note in notes)


def _shortfalls(summary):
    """One line per finished cell above the paper's figure: by how much, after what."""
    lines = []
    for dataset, info in summary["datasets"].items():
        column = info["column"]
        if column is None:
            continue
        for row in info["rows"]:
            if not row["test_nll"]:
                continue
            search = info["searches"].get(row["key"])
            tried = (f"{len(search['trials'])} trials of its search, the best at validation NLL "
                     f"{search['best']['score']:.3f}" if search else "no search")
            if row["best_of_collection"] and info["paper_best"] is not None:
                gap = row["mean"] - info["paper_best"]
                if gap > 0:
                    lines.append(f"- {column}, collection's best ({row['model']}): "
                                 f"{row['mean']:.3f} against the paper's best "
                                 f"{info['paper_best']:.2f}, short by {gap:.3f}, after every "
                                 f"search of the column ({tried} for {row['model']})"
                                 f"{_why(row, search, summary, dataset)}.")
            if row.get("gap") is not None and row["gap"] > 0:
                lines.append(f"- {column}, {row['model']}: {row['mean']:.3f} against "
                             f"{row['paper_nll']:.3f}, short by {row['gap']:.3f}, after {tried}"
                             f"{_why(row, search, summary, dataset)}.")
    if not lines:
        return []
    return ["## Where the table falls short", "",
            "Finished cells above the paper's figure (the reasons common to all of them are "
            "under *Differences from the paper*):", "", *lines, ""]


def _dataset_section(info, dataset, summary):
    lines = [f"## {info['column'] or dataset}: `{info['file']}` (sha256 {info['sha256'][:16]}…)",
             "", "| model | paper | ours, mean ± std | per seed | ours − paper | without first "
             "frames (T − 1) | chosen configuration | parameters | epochs (best) | minutes per "
             "run |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in info["rows"]:
        model = row["model"] + (" (collection's best)" if row["best_of_collection"] else "")
        if not row["test_nll"]:
            lines.append(f"| {model} | {_num(row['paper_nll'])} | {_cell(row)} | | | | "
                         f"{_values(row['chosen'])} | | | |")
            continue
        gap = "" if row["gap"] is None else f"{row['gap']:+.3f}"
        lines.append(
            f"| {model} | {_num(row['paper_nll'])} | {_cell(row)} "
            f"| {', '.join(f'{v:.3f}' for v in row['test_nll'])} | {gap} "
            f"| {row['mean_without_first_frame']:.3f} | {_values(row['chosen'])} "
            f"| {row['parameters']:,} "
            f"| {', '.join(f'{e} ({b})' for e, b in zip(row['epochs'], row['best_epochs']))} "
            f"| {', '.join(f'{t / 60:.1f}' for t in row['train_time_s'])} |")
    if info["paper_best"] is not None:
        lines.append(f"| paper's best: {PAPER_MUSIC_BEST} | {info['paper_best']:.2f} | | | | | "
                     "| | | |")
    lines.append(f"| note frequencies, no model | - | {info['note_frequency_nll']:.3f} | | | | "
                 "each note at its training frequency | 88 | | |")
    lines += ["", "Searches (KerasTuner random search, objective the validation NLL):", ""]
    for key, record in info["searches"].items():
        best = record["best"]
        lines.append(f"- **{key}** ({record['architecture']}; fixed {_values(record['fixed'])}): "
                     f"{len(record['trials'])} of {record['max_trials']} trials over "
                     f"{_space(record['space'])}; best validation NLL {best['score']:.3f} "
                     f"with {_values(best['values'])}.")
    return lines + ["", *_trials(info["searches"])]


def _trials(searches):
    """Every trial of every search of a data set, best first within each search."""
    if not searches:
        return []
    lines = ["<details><summary>Every trial</summary>", "",
             "| search | trial | configuration | validation NLL | best epoch | parameters | "
             "minutes |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, record in searches.items():
        for trial in sorted(record["trials"], key=lambda t: t["score"]):
            minutes = "-" if trial["fit_seconds"] is None else f"{trial['fit_seconds'] / 60:.1f}"
            lines.append(f"| {key} | {trial['trial']} | {_values(trial['values'])} "
                         f"| {trial['score']:.3f} | {trial.get('best_epoch', '-')} "
                         f"| {trial['parameters']:,} | {minutes} |")
    return lines + ["", "</details>", ""]


def _num(value):
    return "-" if value is None else f"{value:.3f}"


def _values(values):
    if not values:
        return "-"
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in values.items())


def _space(space):
    return "; ".join(f"{k} in {v}" for k, v in space.items())


def _settings(settings):
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def plot(summary, path):
    """Validation NLL per epoch of each finalist's first seed, one panel per data set."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = list(summary["datasets"])
    figure, axes = pyplot.subplots(1, len(names), figsize=(4.5 * len(names), 3.6),
                                   squeeze=False)
    for axis, dataset in zip(axes[0], names):
        info = summary["datasets"][dataset]
        for row in info["rows"]:
            if row["curves"]:
                valid = row["curves"][0]["valid"]
                axis.plot(range(1, len(valid) + 1), valid, label=row["model"])
        for row in info["rows"]:
            if row.get("paper_nll") is not None:
                axis.axhline(row["paper_nll"], color="grey", linewidth=0.6, linestyle=":")
        axis.set_title(info["column"] or dataset)
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation NLL (nats per frame)")
        if any(row["curves"] for row in info["rows"]):
            axis.legend(fontsize=7)
    figure.tight_layout()
    _files.write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=110))
    pyplot.close(figure)
