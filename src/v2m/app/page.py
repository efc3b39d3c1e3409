"""The web app's page: Gradio Blocks over :mod:`v2m.app.jobs`.

One :class:`Studio` serves every browser session: it knows which models are offered, loads each
generator once, and keeps each session's files in its own folder of a :class:`jobs.Workspace`.
Jobs run one at a time through Gradio's queue (a second user waits, with their place shown), and
every failure is the command line's one line, shown in the page.

Offline: the page's fonts and scripts are Gradio's own, served by this server; analytics are off.
"""

import html
import os
import sys
import threading
import traceback
from dataclasses import dataclass, field

from ..analysis.timeline import Analysis
from ..controls import MUSIC_FEATURES, ControlError, Controls
from ..errors import V2MError
from ..models.cards import MODELS, card
from ..soundtrack import Result, analyze_for, load_generator
from ..theory import NOTE_NAMES
from . import jobs

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported anywhere

import gradio as gr  # noqa: E402

AUTO = "from the video"
NONE = "none"
EVERY_SHOT = -1
CONTROL_WORDS = {"music": "the music feature", "video": "the video feature on motion, colour or semantics",
                 "objects": "the video feature on objects", "tempo": "the tempo", "key": "the key"}
KEYS = [f"{note} {mode}" for mode in ("major", "minor") for note in NOTE_NAMES]
CSS = """
#v2m-message .v2m-error { color: var(--error-text-color, #b91c1c); font-weight: 600; margin: 0.2em 0; }
#v2m-message .v2m-note { margin: 0.2em 0; }
"""


@dataclass
class Session:
    """What one browser session has: its uploads (checked), their analyses, its results."""

    videos: list[str] = field(default_factory=list)  # upload paths, in order
    names: dict[str, str] = field(default_factory=dict)  # path -> the name the user knows
    analyses: dict[tuple[str, str | None], Analysis] = field(default_factory=dict)  # (path, CLIP source)
    results: dict[str, tuple[Result, str]] = field(default_factory=dict)  # path -> its latest score, the model
    variations: list[Result] = field(default_factory=list)


class Studio:
    """The app's shared state: the models offered (the composer always; a neural model when its
    options were given), the generators loaded so far, the limits and the sessions' workspace."""

    def __init__(self, neural: dict[str, dict] | None = None, limits: jobs.Limits = jobs.Limits(),
                 root: str | None = None, device: str = "auto"):
        self.neural = dict(neural or {})
        for name, options in self.neural.items():
            if name == "composer" or name not in MODELS:
                offered = ", ".join(m for m in MODELS if m != "composer")
                raise V2MError(f"unknown neural model {name!r}; the app offers {offered}")
            card(name).make_options(**options)  # a bad option is one line now, not at the first job
        self.limits = limits
        self.workspace = jobs.Workspace(root, limits)
        self.device = device
        self._generators: dict[tuple[str, str | None], object] = {}
        self._lock = threading.Lock()

    @property
    def models(self) -> list[str]:
        return ["composer", *self.neural]

    def generator(self, model: str, style: str | None = None):
        """The generator of ``model`` (the composer in ``style``), loaded on first use."""
        if model not in self.models:
            raise V2MError(f"model {model!r} is not offered here; start v2m app with --checkpoint-{model}")
        key = (model, style if model == "composer" else None)
        with self._lock:
            if key not in self._generators:
                options = {"style": style} if model == "composer" else self.neural[model]
                self._generators[key] = load_generator(model, device=self.device, **options)
            return self._generators[key]

    def analysis(self, session: Session, path: str, generator, progress=None) -> Analysis:
        """The session's analysis of ``path`` for ``generator`` (its CLIP), made once; a model that
        reads no semantics (the composer) takes any analysis of the video already made."""
        embedder = generator.embedder
        key = (path, embedder.source if embedder else None)
        if key not in session.analyses:
            made = None if embedder else next((a for (p, _), a in session.analyses.items() if p == path), None)
            session.analyses[key] = made or analyze_for(path, generator, self.device, progress=progress)
        return session.analyses[key]

    def folder(self, request, path: str, session: Session) -> str:
        """Where the session's results for upload ``path`` go: one subfolder per upload, so two
        uploads of the same name do not meet."""
        self.workspace.sweep()
        base = self.workspace.session(_session_key(request))
        folder = os.path.join(base, str(session.videos.index(path)))
        os.makedirs(folder, exist_ok=True)
        return folder


def _session_key(request) -> str:
    key = getattr(request, "session_hash", None) if request is not None else None
    return key or "local"


def _one_line(e: Exception, names: dict[str, str]) -> str:
    """The command line's ``v2m: error: FILE: PROBLEM``, with an upload's temporary path replaced by
    the name the user gave it; anything unexpected is one line too (its traceback goes to the log)."""
    if isinstance(e, V2MError):
        where = names.get(e.path, os.path.basename(e.path)) if e.path else None
        return f"v2m: error: {where}: {e.message}" if where else f"v2m: error: {e.message}"
    if isinstance(e, (ControlError, ValueError)):
        return f"v2m: error: {e}"
    traceback.print_exception(e, file=sys.stderr)
    first = (str(e).splitlines() or [""])[0]
    return f"v2m: error: unexpected failure ({type(e).__name__}: {first}); the server's log has the details"


def _message(errors: list[str] = (), notes: list[str] = ()) -> str:
    lines = [f'<p class="v2m-error">{html.escape(e)}</p>' for e in errors]
    lines += [f'<p class="v2m-note">{html.escape(n)}</p>' for n in notes]
    return "".join(lines)


def _controls(model: str, key: str, tempo, music_feature: str, music_weight: float, shot, video_feature: str,
              video_weight: float) -> tuple[Controls, list[str]]:
    """The controls set on the page, and a note for each kind the model does not use."""
    music = [f"{music_feature},{float(music_weight):g}"] if music_feature != NONE else []
    shot = None if shot in (None, EVERY_SHOT) else int(shot)
    video = [jobs.video_control(shot, video_feature, video_weight)] if video_feature != NONE else []
    tempo = None if tempo in (None, "", 0) else float(tempo)
    controls = Controls.parse(music, video, tempo, None if key in (None, AUTO) else key)
    ignored = card(model).ignored_controls(controls)
    return controls, [f"{model} does not use {CONTROL_WORDS[k]}; ignored" for k in ignored]


def _files(result: Result) -> list[str]:
    return [p for p in (result.video, result.wav, result.midi, result.provenance) if p]


def build(studio: Studio):
    """The page: uploads and settings on the left, the result and its variations on the right."""
    from ..models.composer.styles import STYLES

    keep = int(60 * studio.limits.keep_minutes)  # Gradio's own copies of uploads and results go as ours do
    with gr.Blocks(title="v2m: a soundtrack for your video", analytics_enabled=False,
                   delete_cache=(max(60, keep // 4), keep)) as page:
        state = gr.State()  # the session's Session, made by its first upload
        gr.Markdown("# v2m\nA video in, the same video out with music that fits it: cuts on beats, the mood "
                    "of the picture, any length.")
        with gr.Row():
            with gr.Column(scale=2):
                uploads = gr.File(label="Videos (drag and drop one or more)", file_count="multiple",
                                  file_types=["video"], elem_id="v2m-uploads")
                which = gr.Dropdown(label="Video shown, varied and controlled by shot", choices=[],
                                    elem_id="v2m-which")
                message = gr.HTML(elem_id="v2m-message")
                model = gr.Radio(studio.models, value="composer", label="Model", elem_id="v2m-model")
                if not studio.neural:
                    gr.Markdown("Only the offline composer is offered: Diff-V2M and ControllableV2M need their "
                                "weights. Start the app with `--checkpoint-diffv2m PATH` or `--checkpoint-stad PATH` "
                                "(or `--config FILE`) to offer them.")
                with gr.Row():
                    style = gr.Dropdown([AUTO, *STYLES], value=AUTO, label="Style", elem_id="v2m-style")
                    key = gr.Dropdown([AUTO, *KEYS], value=AUTO, label="Key", elem_id="v2m-key")
                style_note = gr.Markdown(_style_note(AUTO))
                with gr.Row():
                    tempo = gr.Number(0, label="Tempo (BPM; 0: from the video)", elem_id="v2m-tempo")
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="v2m-seed")
                with gr.Accordion("Controls", open=False, elem_id="v2m-controls"):
                    with gr.Row():
                        music_feature = gr.Dropdown([NONE, *MUSIC_FEATURES, "all"], value=NONE, label="Music feature",
                                                    info="pitch: register, loudness: dynamics, chroma: harmonic "
                                                         "colour, spectral: brightness")
                        music_weight = gr.Slider(0, 3, value=1, step=0.1, label="Music weight (1: as the video says)")
                    with gr.Row():
                        shot = gr.Dropdown([("every shot", EVERY_SHOT)], value=EVERY_SHOT, label="Shot",
                                           elem_id="v2m-shot")
                        video_feature = gr.Dropdown(_video_features("composer"), value=NONE, label="Video feature",
                                                    info="move: motion, color: colour, semantic: new melodic "
                                                         "material; area, position: objects")
                        video_weight = gr.Slider(0, 3, value=1, step=0.1, label="Video weight")
                with gr.Accordion("Sound", open=False, elem_id="v2m-sound"):
                    mix = gr.Slider(0, 1, value=0, step=0.05, label="Keep the original sound underneath at")
                    speech = gr.Checkbox(False, label="Keep the speech: the original sound stays (at 1 unless set "
                                                      "above) and the music dips wherever someone speaks",
                                         elem_id="v2m-speech")
                    lufs = gr.Slider(-30, -8, value=-14, step=0.5, label="Loudness target (LUFS)")
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="v2m-generate")
                    vary = gr.Button("Variations (3 seeds)", elem_id="v2m-vary")
            with gr.Column(scale=3):
                with gr.Tab("Result"):
                    video = gr.Video(label="Scored video", interactive=False, elem_id="v2m-video")
                    summary = gr.HTML(elem_id="v2m-summary")
                    picture = gr.Image(label="Alignment: cuts, visual beats, music beats", type="filepath",
                                       show_label=False, interactive=False, elem_id="v2m-picture")
                    downloads = gr.File(label="Downloads: video, WAV, MIDI, provenance (JSON)",
                                        file_count="multiple",
                                        interactive=False, elem_id="v2m-downloads")
                with gr.Tab("Variations", elem_id="v2m-variations-tab"):
                    with gr.Row():
                        takes, take_notes = [], []
                        for k in range(3):
                            with gr.Column(min_width=120):
                                takes.append(gr.Video(label=f"Variation {k + 1}", interactive=False,
                                                      elem_id=f"v2m-take{k}"))
                                take_notes.append(gr.HTML(elem_id=f"v2m-take{k}-summary"))
                    pick = gr.Radio([], label="Download this variation", elem_id="v2m-pick")
                    take_files = gr.File(label="Downloads of the variation picked", file_count="multiple",
                                         interactive=False, elem_id="v2m-take-downloads")

        choices = [model, style, key, tempo, seed, music_feature, music_weight, shot, video_feature, video_weight,
                   mix, lufs, speech]

        def on_upload(session: Session, files, chosen: str, request: gr.Request, progress=gr.Progress()):
            session = Session()  # a new upload starts over
            errors = []
            for path in files or []:
                name = os.path.basename(path)
                try:
                    jobs.check_upload(path, studio.limits)
                except V2MError as e:
                    errors.append(_one_line(e, {path: name}))
                    continue
                session.videos.append(path)
                session.names[path] = name
            if not session.videos:
                return {state: session, which: gr.update(choices=[], value=None), message: _message(errors),
                        shot: gr.update(choices=[("every shot", EVERY_SHOT)], value=EVERY_SHOT)}
            first = session.videos[0]
            try:
                shots = _shots(studio, session, first, chosen, progress)
            except Exception as e:  # noqa: BLE001 - every failure is one line in the page
                errors.append(_one_line(e, session.names))
                shots = [("every shot", EVERY_SHOT)]
            return {state: session, message: _message(errors),
                    which: gr.update(choices=[(session.names[p], p) for p in session.videos], value=first),
                    shot: gr.update(choices=shots, value=EVERY_SHOT)}

        def on_which(session: Session, path, chosen: str, progress=gr.Progress()):
            if session is None or not path or path not in session.videos:
                return {}
            out = {shot: gr.update(choices=_shots(studio, session, path, chosen, progress), value=EVERY_SHOT)}
            out.update(_show(*session.results.get(path, (None, None))))
            return out

        def _show(result: Result | None, model: str | None) -> dict:
            if result is None:
                return {video: None, summary: "", picture: None, downloads: None}
            return {video: result.video, picture: result.plot, downloads: _files(result),
                    summary: f"<p>{html.escape(_summary(result, model))}</p>"}

        def settings(values: dict):
            """The generator and the scoring options set on the page (and notes on what is ignored)."""
            name = values[model]
            controls, ignored = _controls(name, values[key], values[tempo], values[music_feature],
                                          values[music_weight], values[shot], values[video_feature],
                                          values[video_weight])
            generator = studio.generator(name, None if values[style] == AUTO else values[style])
            level = float(values[mix])
            options = {"controls": controls, "lufs": float(values[lufs]), "keep_speech": bool(values[speech]),
                       "mix": None if values[speech] and level == 0 else level}
            return generator, options, int(values[seed] or 0), ignored

        def on_generate(values: dict, request: gr.Request, progress=gr.Progress()):
            session, path = values[state], values[which]
            if session is None or not session.videos:
                return {message: _message(["v2m: error: upload a video first"])}
            try:
                generator, options, first_seed, ignored = settings(values)
            except Exception as e:  # noqa: BLE001 - every failure is one line in the page
                return {message: _message([_one_line(e, session.names)])}
            errors, n = [], len(session.videos)
            for i, upload in enumerate(session.videos):
                name = session.names[upload]

                def report(stage, fraction, i=i, name=name):
                    progress((i + jobs.stage_share(stage, fraction)) / n, desc=f"{name}: {jobs.STAGE_WORDS[stage]}")

                try:
                    analysis = studio.analysis(session, upload, generator, report)
                    result = jobs.score(upload, studio.folder(request, upload, session), generator=generator,
                                        seed=first_seed, analysis=analysis, progress=report, **options)
                    session.results[upload] = (result, values[model])
                except Exception as e:  # noqa: BLE001 - the other videos go on; failures are listed
                    errors.append(_one_line(e, session.names))
            shown = path if path in session.results else next(iter(session.results), None)
            out = {state: session, message: _message(errors, ignored)}
            out.update(_show(*session.results.get(shown, (None, None))))
            if shown:
                out[which] = gr.update(value=shown)
            return out

        def on_vary(values: dict, request: gr.Request, progress=gr.Progress()):
            session, path = values[state], values[which]
            if session is None or path not in session.videos:
                return {message: _message(["v2m: error: upload a video first"])}
            try:
                generator, options, first_seed, ignored = settings(values)
                seeds = (first_seed, first_seed + 1, first_seed + 2)
                name = session.names[path]

                def report(stage, fraction):  # the analysis is the first tenth, the three takes the rest
                    progress(fraction, desc=f"{name}: {jobs.STAGE_WORDS[stage]}")

                analysis = studio.analysis(session, path, generator, lambda s, f: report(s, 0.1 * f))
                session.variations = jobs.variations(
                    path, studio.folder(request, path, session), generator=generator, seeds=seeds, analysis=analysis,
                    progress=lambda s, f: report(s, 0.1 + 0.9 * f), **options)
            except Exception as e:  # noqa: BLE001
                return {message: _message([_one_line(e, session.names)])}
            out = {state: session, message: _message([], ignored),
                   pick: gr.update(choices=[f"seed {s}" for s in seeds], value=None), take_files: None}
            for k, r in enumerate(session.variations):
                out[takes[k]] = r.video
                out[take_notes[k]] = f"<p><b>seed {seeds[k]}</b>: {html.escape(_summary(r, values[model]))}</p>"
            return out

        def on_pick(session: Session, choice):
            for r in session.variations if session else []:
                if choice and os.path.basename(r.video).rsplit("_seed", 1)[-1].split(".")[0] == choice.split()[-1]:
                    return _files(r)
            return None

        def on_model(name):
            controls = card(name).controls
            return {style: gr.update(interactive=name == "composer"),
                    key: gr.update(interactive="key" in controls),
                    tempo: gr.update(interactive="tempo" in controls),
                    music_feature: gr.update(interactive="music" in controls),
                    video_feature: gr.update(choices=_video_features(name), value=NONE,
                                             interactive="video" in controls or "objects" in controls)}

        everything = [state, which, message, shot, video, summary, picture, downloads]
        uploads.change(on_upload, [state, uploads, model], everything)
        which.input(on_which, [state, which, model], everything)
        go.click(on_generate, {state, which, *choices}, everything)
        vary.click(on_vary, {state, which, *choices}, [state, message, pick, take_files, *takes, *take_notes])
        pick.change(on_pick, [state, pick], take_files)
        model.change(on_model, model, [style, key, tempo, music_feature, video_feature])
        style.change(_style_note, style, style_note)

        def on_leave(request: gr.Request):
            studio.workspace.remove(_session_key(request))

        page.unload(on_leave)
    return page


def _style_note(style: str) -> str:
    from ..models.composer.styles import STYLES

    if style in STYLES:
        s = STYLES[style]
        return f"*{style}*: {s.description} ({s.tempo[0]:.0f}-{s.tempo[1]:.0f} BPM)"
    return "*from the video*: the composer picks the style from the picture's energy and mood"


def _video_features(model: str) -> list[str]:
    controls = card(model).controls
    features = [NONE]
    if "video" in controls:
        features += ["move", "color", "semantic"]
    if "objects" in controls:
        features += ["area", "position"]
    return features + (["all"] if len(features) > 1 else [])


def _shots(studio: Studio, session: Session, path: str, model: str, progress) -> list[tuple[str, int]]:
    """The shot list of ``path`` for the page, from the analysis the chosen ``model`` reads (made
    once: generating with that model uses it again)."""
    name = session.names[path]
    analysis = studio.analysis(session, path, studio.generator(model),
                               lambda stage, f: progress(f, desc=f"{name}: {jobs.STAGE_WORDS[stage]}"))
    return [("every shot", EVERY_SHOT), *jobs.shot_choices(analysis)]


def _summary(result: Result, model: str) -> str:
    """The command line's summary line, naming the file by its name only."""
    line = jobs.describe(result, model)
    return line.replace(result.video, os.path.basename(result.video), 1)


def launch(studio: Studio, host: str = "127.0.0.1", port: int = 7860, share: bool = False):
    """Start the app in the background: one job at a time, the rest queued. Returns the page and
    its local address (and the public one with ``share``)."""
    page = build(studio)
    page.queue(default_concurrency_limit=1)
    try:
        _, local, public = page.launch(
            server_name=host, server_port=port, share=share, quiet=True, prevent_thread_lock=True, ssr_mode=False,
            mcp_server=False, max_file_size=f"{int(studio.limits.max_megabytes)}mb",
            allowed_paths=[studio.workspace.root], theme=gr.themes.Default(), css=CSS, footer_links=["settings"],
            show_error=False)
    except OSError as e:
        raise V2MError(f"cannot listen on {host}:{port} ({e}); choose another --port or --host") from None
    return page, local, public
